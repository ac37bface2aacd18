#!/usr/bin/env bash
# The one-shot GPU measurement (at most about 8 minutes on one GPU): the
# ImageNet head step (frozen ResNet-50, batch 256) in bf16 and f32, the
# CIFAR-10 ResNet-18 CDC step (batch 512) and a fixed-budget CIFAR-10 CDC run
# with its test-split evaluation, into one JSON file.
#
#   CDCJAX_DATA_DIR=../shared/datasets launch/measure_gpu.sh /tmp/gpu.json
#   launch/measure_gpu.sh --dry-run /tmp/gpu.json   # prints the command
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dry_run=0
if [[ "${1:-}" == --dry-run ]]; then dry_run=1; shift; fi
out="${1:-/tmp/cdcjax_accelerator.json}"
shift || true
export CDCJAX_DATA_DIR="${CDCJAX_DATA_DIR:-$repo/../shared/datasets}"
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}"
command=("${PYTHON:-python}" -m cdcjax.bench accelerator "--out=$out" "$@")
if ((dry_run)); then
  printf '%q ' "${command[@]}"; echo
  exit 0
fi
if [[ ! -f "$CDCJAX_DATA_DIR/cifar10.npz" ]]; then
  echo "error: $CDCJAX_DATA_DIR/cifar10.npz does not exist; set CDCJAX_DATA_DIR" >&2
  exit 2
fi
cd "$repo"
exec "${command[@]}"
