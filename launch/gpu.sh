#!/usr/bin/env bash
# One machine with one or more GPUs: one process drives them all (the batch
# is sharded over every GPU). Install first: pip install -e '.[gpu]'.
#
#   launch/gpu.sh --config=configs/cifar10_cdc.py --workdir=/runs/cifar10_cdc \
#       [--config.x=y ...]
#   launch/gpu.sh --dry-run --config=... --workdir=...   # prints the command
#
# Rerunning the same command resumes from the newest checkpoint.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dry_run=0 args=()
for arg in "$@"; do
  if [[ "$arg" == --dry-run ]]; then dry_run=1; else args+=("$arg"); fi
done
# XLA reserves 75% of GPU memory by default; a training job may take more.
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}"
command=("${PYTHON:-python}" -m cdcjax.main "${args[@]}")
if ((dry_run)); then
  echo "XLA_PYTHON_CLIENT_MEM_FRACTION=$XLA_PYTHON_CLIENT_MEM_FRACTION"
  printf '%q ' "${command[@]}"; echo
  exit 0
fi
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "error: nvidia-smi not found: this machine shows no NVIDIA GPU" >&2
  exit 2
fi
cd "$repo"
exec "${command[@]}"
