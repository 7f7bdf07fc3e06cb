#!/usr/bin/env bash
# Sets everything up (idempotent; .venv and the OpenCLIP interop .venv-interop), then runs the linters
# and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
bash scripts/setup_interop_env.sh  # the real open_clip for the interop round-trip tests
export OPENCLIP_PYTHON="$PWD/.venv-interop/bin/python"
. .venv/bin/activate
export NO_ALBUMENTATIONS_UPDATE=1
echo "[test] ruff"
ruff check . && ruff format --check .
echo "[test] pytest"
python -m pytest -n 2 "$@"
