#!/usr/bin/env bash
# Sets everything up (idempotent), then runs the linters and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
. .venv/bin/activate
export NO_ALBUMENTATIONS_UPDATE=1
echo "[test] ruff"
ruff check . && ruff format --check .
echo "[test] pytest"
python -m pytest -n 2 "$@"
