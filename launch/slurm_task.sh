#!/usr/bin/env bash
# One SLURM task of launch/slurm_gpu.sbatch: trains with --multihost, so
# jax.distributed.initialize() reads SLURM_JOB_ID, SLURM_STEP_NODELIST,
# SLURM_NTASKS, SLURM_PROCID and SLURM_LOCALID (coordinator: the first node).
# With more tasks than nodes (one per GPU), each task sees only its GPU.
#
#   launch/slurm_task.sh --config=configs/X.py --workdir=DIR [--config.x=y ...]
#   launch/slurm_task.sh --dry-run ...   # prints the command
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dry_run=0 args=()
for arg in "$@"; do
  if [[ "$arg" == --dry-run ]]; then dry_run=1; else args+=("$arg"); fi
done
tasks_per_node=$(( ${SLURM_NTASKS:-1} / ${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}} ))
if (( tasks_per_node > 1 )) && [[ -n "${SLURM_LOCALID:-}" && -z "${CDCJAX_KEEP_VISIBLE_DEVICES:-}" ]]; then
  export CUDA_VISIBLE_DEVICES="$SLURM_LOCALID"
fi
command=("${PYTHON:-python}" -m cdcjax.main --multihost "${args[@]}")
if ((dry_run)); then
  printf '%q ' "${command[@]}"; echo
  exit 0
fi
cd "$repo"
exec "${command[@]}"
