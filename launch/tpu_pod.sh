#!/usr/bin/env bash
# Trains on a TPU pod slice: creates the TPU VM (or reuses it), installs this
# checkout of cdcjax on every worker, and starts the same command on all of
# them (one process per host, --multihost). The workdir must be a gs://
# bucket that every worker reaches: checkpoints, metrics.jsonl and config.json
# go there.
#
#   launch/tpu_pod.sh --name=cdc-pod --zone=us-east5-a --type=v5p-64 \
#       --config=configs/imagenet_cdc.py --workdir=gs://BUCKET/imagenet_cdc \
#       [--version=RUNTIME] [--spot] [--dry-run] [-- --config.x=y ...]
#
# --version defaults to the TPU VM runtime for the type's generation. What is
# installed on the workers is this checkout's HEAD commit (git archive):
# commit local changes first.
# --dry-run prints the commands instead of running them. Preempted or
# stopped: run the same command again; it reuses the VM and resumes from the
# newest checkpoint in the workdir. A spot VM's SIGTERM makes every worker
# save a checkpoint at one agreed step and exit with status 75 (README,
# "Faults"), so the rerun loses no step.
set -euo pipefail

name='' zone='' type='' version='' config='' workdir=''
spot=0 dry_run=0 extra=()
while (($#)); do
  case "$1" in
    --name=*) name="${1#*=}" ;;
    --zone=*) zone="${1#*=}" ;;
    --type=*) type="${1#*=}" ;;
    --version=*) version="${1#*=}" ;;
    --config=*) config="${1#*=}" ;;
    --workdir=*) workdir="${1#*=}" ;;
    --spot) spot=1 ;;
    --dry-run) dry_run=1 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "error: unknown argument '$1' (see the usage at the top of $0)" >&2
       exit 2 ;;
  esac
  shift
done
for flag in name zone type config workdir; do
  if [[ -z "${!flag}" ]]; then
    echo "error: --$flag is required (see the usage at the top of $0)" >&2
    exit 2
  fi
done
if [[ "$workdir" != gs://* ]]; then
  echo "error: --workdir=$workdir is not a gs:// path; every worker of a pod" \
       "must write the same workdir (a bucket)" >&2
  exit 2
fi
if [[ -z "$version" ]]; then
  case "$type" in
    v4-*) version=tpu-ubuntu2204-base ;;
    v5litepod-*|v5e-*) version=v2-alpha-tpuv5-lite ;;
    v5p-*) version=v2-alpha-tpuv5 ;;
    v6e-*) version=v2-alpha-tpuv6e ;;
    *) echo "error: --type=$type: no default runtime for it; give --version" >&2
       exit 2 ;;
  esac
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [[ ! -f "$repo/$config" ]]; then
  echo "error: --config=$config does not exist in $repo" >&2
  exit 2
fi

run() {  # Prints the command; runs it unless --dry-run.
  printf '%q ' "$@"; echo
  ((dry_run)) || "$@"
}
tpu=(gcloud compute tpus tpu-vm)
where=(--zone="$zone")
create=("${tpu[@]}" create "$name" "${where[@]}" --accelerator-type="$type"
        --version="$version")
((spot)) && create+=(--spot)

if ((dry_run)); then
  echo "# create the TPU VM unless it exists:"
  printf '%q ' "${tpu[@]}" describe "$name" "${where[@]}"; echo '||'
  printf '  '; printf '%q ' "${create[@]}"; echo
elif ! "${tpu[@]}" describe "$name" "${where[@]}" >/dev/null 2>&1; then
  run "${create[@]}"
fi
archive=/tmp/cdcjax-$name.tar.gz
run git -C "$repo" archive --format=tar.gz --prefix=cdcjax/ -o "$archive" HEAD
run "${tpu[@]}" scp "$archive" "$name:cdcjax.tar.gz" "${where[@]}" --worker=all
run "${tpu[@]}" ssh "$name" "${where[@]}" --worker=all --command \
    "rm -rf cdcjax && tar xzf cdcjax.tar.gz && pip install -q -e 'cdcjax[tpu]'"
train="cd cdcjax && python -m cdcjax.main --config=$config --workdir=$workdir --multihost"
for arg in "${extra[@]}"; do train+=" $(printf '%q' "$arg")"; done
run "${tpu[@]}" ssh "$name" "${where[@]}" --worker=all --command "$train"
