#!/usr/bin/env bash
# Idempotent set-up of .venv-interop: the real OpenCLIP package beside torch 2.14.1 + torchvision 0.29.1
# (open_clip needs torchvision, which does not import beside the project's torch 2.13.0 CPU wheel).
# Only the OpenCLIP side of the interop tests runs here (tests/openclip_side.py); the project itself
# stays on .venv. The pair installs from this machine's local wheels (a CUDA build that runs on CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${INTEROP_VENV:-.venv-interop}
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
SPECS=(torch==2.14.1 torchvision==0.29.1 open_clip_torch==3.3.0 transformers==5.24.0 tokenizers==0.23.3)
stamp="$VENV/.installed-$(printf '%s\n' "${SPECS[@]}" | cat - scripts/setup_interop_env.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || { echo "[setup-interop] creating $VENV"; "$PYTHON" -m venv "$VENV"; }
  echo "[setup-interop] installing ${SPECS[*]}"
  "$VENV/bin/pip" install -q "${SPECS[@]}" 2>&1 | { grep -v "is ignored: it is neither" || true; }
  "$VENV/bin/python" -c "import torch, torchvision, open_clip, transformers" \
    || { echo "[setup-interop] the install is incomplete; see the pip output above"; exit 1; }
  rm -f "$VENV"/.installed-*; touch "$stamp"
fi
