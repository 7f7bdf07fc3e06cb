#!/usr/bin/env bash
# Starts `python -m trainer.train` under torchrun: one process per GPU, on one node or many.
#
#   single node (all its GPUs):   deploy/train_torchrun.sh --TRAINER-OPTIONS…
#   N nodes (the same line on every node; ranks come from the c10d rendezvous):
#       NNODES=4 MASTER_ADDR=node0.example MASTER_PORT=29500 deploy/train_torchrun.sh --TRAINER-OPTIONS…
#
# Environment: NPROC_PER_NODE (default: the GPUs nvidia-smi lists), NNODES (default 1), MASTER_ADDR /
# MASTER_PORT (rendezvous host:port on a node every node can reach; multi-node only), RDZV_ID (one id
# per training run, default curation-train), DRY_RUN=1 prints the torchrun command instead of running it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${NPROC_PER_NODE:-}" ]]; then
  if ! NPROC_PER_NODE=$(nvidia-smi --list-gpus 2>/dev/null | grep -c '^GPU'); then
    echo "train_torchrun.sh: no GPU found by nvidia-smi; set NPROC_PER_NODE (e.g. NPROC_PER_NODE=2 for a CPU run)" >&2
    exit 2
  fi
fi
NNODES=${NNODES:-1}
export NO_ALBUMENTATIONS_UPDATE=1
# torchrun's default (one OpenMP thread per process) starves image decoding in the loader workers.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

cmd=(torchrun --nproc-per-node="$NPROC_PER_NODE")
if [[ "$NNODES" == 1 ]]; then
  cmd+=(--standalone)
else
  if [[ -z "${MASTER_ADDR:-}" ]]; then
    echo "train_torchrun.sh: NNODES=$NNODES needs MASTER_ADDR (a host every node can reach, e.g. the first node)" >&2
    exit 2
  fi
  cmd+=(--nnodes="$NNODES" --rdzv-backend=c10d --rdzv-endpoint="$MASTER_ADDR:${MASTER_PORT:-29500}"
        --rdzv-id="${RDZV_ID:-curation-train}")
fi
cmd+=(-m trainer.train "$@")

if [[ -n "${DRY_RUN:-}" ]]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
exec "${cmd[@]}"
