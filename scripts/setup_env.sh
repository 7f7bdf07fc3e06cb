#!/usr/bin/env bash
# Idempotent set-up of everything the project needs on a fresh Debian machine:
# system packages (WordNet 3.0 data, real photos for tests), a virtualenv in .venv,
# torch first (CPU wheel here; see README for CUDA clusters), the pinned dependencies,
# and WordNet copied into the venv's nltk_data. Re-running it is quick.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
export NO_ALBUMENTATIONS_UPDATE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# System packages: WordNet 3.0 (nltk cannot download offline), Debian's real photos, and Chromium for
# the report's browser test (tests/test_report_browser.py: headless, offline).
apt_needed=()
for pkg in wordnet-base wordnet-sense-index mate-backgrounds chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || apt_needed+=("$pkg")
done
if ((${#apt_needed[@]})) && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "[setup] installing system packages: ${apt_needed[*]}"
  # Another apt run (a second checkout setting up) holds the lock: wait for it rather than fail.
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null \
    && $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q "${apt_needed[@]}" >/dev/null \
    || echo "[setup] warning: could not install ${apt_needed[*]}; WordNet falls back to nltk.download, the browser test fails"
fi

# pip prints a warning per local index folder that this machine lacks; hide only those lines.
pip_install() {
  pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }
  return "${PIPESTATUS[0]}"
}

[ -x "$VENV/bin/python" ] || { echo "[setup] creating $VENV"; "$PYTHON" -m venv "$VENV"; }
# shellcheck disable=SC1091
. "$VENV/bin/activate"

# Skip pip entirely when nothing that drives the install has changed since last time.
stamp="$VENV/.installed-$(cat setup.py constraints.txt scripts/setup_env.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  python -c "import torch" 2>/dev/null || { echo "[setup] installing $TORCH_SPEC"; pip_install $TORCH_SPEC; }  # unquoted: may carry --index-url
  echo "[setup] installing the project and its pinned dependencies"
  pip_install -c constraints.txt -e ".[dev,nsfw]"
  python -c "import contract, filters, pipelines, trainer, apache_beam, torch, webdataset, pycld2, onnxruntime, nudenet" 2>/dev/null \
    || { echo "[setup] the install is incomplete; see the pip output above"; exit 1; }
  rm -f "$VENV"/.installed-*; touch "$stamp"
fi

python -m filters.wordnet_data install --quiet
