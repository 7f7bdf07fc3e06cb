#!/usr/bin/env bash
# Sets everything up (idempotent), then runs the curation job on the built-in demo:
# a generated candidate pool served on 127.0.0.1, curated on Beam's local runner.
# Extra arguments go to `python -m demo` (e.g. --size 500, --workers 2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
. .venv/bin/activate
export NO_ALBUMENTATIONS_UPDATE=1
python -m demo --out out/demo "$@"
