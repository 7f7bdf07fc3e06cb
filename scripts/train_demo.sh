#!/usr/bin/env bash
# Sets everything up (idempotent), curates a 16,000-candidate training pool into out/demo/train if it is missing, then
# trains tiny CLIP, ALIGN and CatLIP on it within a fixed CPU budget each and evaluates them
# zero-shot on held-out scenes (out/demo/heldout). Prints a table; results in out/demo/train_results.json.
# Extra arguments go to `python -m demo.train` (e.g. --objectives clip, --steps 200).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
. .venv/bin/activate
export NO_ALBUMENTATIONS_UPDATE=1
python -m demo.train --out out/demo "$@"
