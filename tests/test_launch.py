"""launch/: the dry-runs print the commands they would run, bad arguments get
one line, and the SLURM task's command line trains as two local CPU processes
given SLURM's variables (jax.distributed finds its peers from them)."""

import json
import os
import socket
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(REPO_ROOT, 'launch')


def _run(script, *args, env=None):
  return subprocess.run(['bash', os.path.join(LAUNCH, script), *args],
                        cwd=REPO_ROOT, capture_output=True, text=True,
                        timeout=60, env=env)


def test_tpu_pod_dry_run_prints_every_step():
  out = _run('tpu_pod.sh', '--name=pod', '--zone=us-east5-a',
             '--type=v5p-64', '--config=configs/imagenet_cdc.py',
             '--workdir=gs://bucket/run', '--spot', '--dry-run', '--',
             '--config.seed=3')
  assert out.returncode == 0, out.stderr
  lines = out.stdout.splitlines()
  assert 'gcloud compute tpus tpu-vm describe pod --zone=us-east5-a ||' in lines
  create = next(l for l in lines if ' create pod ' in l)
  assert '--accelerator-type=v5p-64' in create and '--spot' in create
  assert '--version=v2-alpha-tpuv5' in create
  install, train = [l for l in lines if ' ssh pod ' in l]
  assert '--worker=all' in install and 'pip\\ install' in install
  assert '--worker=all' in train
  assert ('python\\ -m\\ cdcjax.main\\ --config=configs/imagenet_cdc.py\\ '
          '--workdir=gs://bucket/run\\ --multihost\\ --config.seed=3') in train
  assert any(' scp ' in l and '--worker=all' in l for l in lines)


def test_tpu_pod_refuses_bad_arguments_in_one_line():
  base = ['--name=pod', '--zone=z', '--type=v5p-64',
          '--config=configs/imagenet_cdc.py', '--dry-run']
  for args, message in [
      (base + ['--workdir=/local/run'], 'is not a gs:// path'),
      (base[1:] + ['--workdir=gs://b/r'], '--name is required'),
      (base + ['--workdir=gs://b/r', '--bogus'], "unknown argument '--bogus'"),
      (['--name=p', '--zone=z', '--type=v9x-8', '--workdir=gs://b/r',
        '--config=configs/imagenet_cdc.py'], 'no default runtime'),
      (['--name=p', '--zone=z', '--type=v4-8', '--workdir=gs://b/r',
        '--config=configs/nope.py'], 'does not exist')]:
    out = _run('tpu_pod.sh', *args)
    assert out.returncode == 2, (args, out.stdout)
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr


def test_slurm_and_gpu_dry_runs():
  out = _run('slurm_gpu.sbatch', '--dry-run', '--config=configs/cifar10_cdc.py',
             '--workdir=/shared/run')
  assert out.returncode == 0, out.stderr
  srun, task = out.stdout.splitlines()
  assert srun.startswith('srun ') and 'launch/slurm_task.sh' in srun
  assert task == ('python -m cdcjax.main --multihost '
                  '--config=configs/cifar10_cdc.py --workdir=/shared/run ')
  with open(os.path.join(LAUNCH, 'slurm_gpu.sbatch')) as f:
    assert '#SBATCH --ntasks-per-node=1' in f.read()
  out = _run('gpu.sh', '--dry-run', '--config=configs/cifar10_cdc.py',
             '--workdir=/runs/c')
  assert out.returncode == 0, out.stderr
  assert out.stdout.splitlines()[-1] == (
      'python -m cdcjax.main --config=configs/cifar10_cdc.py --workdir=/runs/c ')


def _free_slurm_job_id():
  """A job id whose port (JAX: 61440 + id % 4096) is free here."""
  for job_id in range(1000, 5096):
    with socket.socket() as s:
      try:
        s.bind(('127.0.0.1', 61440 + job_id % 4096))
        return job_id
      except OSError:
        continue
  raise RuntimeError('no free port in 61440-65535')


@pytest.mark.e2e  # Two processes through the script: about 50 s.
def test_slurm_task_trains_as_two_processes(tmp_path):
  workdir = tmp_path / 'run'
  job_id = _free_slurm_job_id()
  procs = []
  for rank in range(2):
    # PYTHON: this interpreter, also when its virtual environment is not
    # activated (slurm_task.sh's default is `python` from PATH).
    env = dict(os.environ, PYTHON=sys.executable, JAX_PLATFORMS='cpu',
               JAX_NUM_CPU_DEVICES='2',
               SLURM_JOB_ID=str(job_id), SLURM_STEP_NODELIST='localhost',
               SLURM_NTASKS='2', SLURM_PROCID=str(rank),
               SLURM_LOCALID=str(rank), SLURM_JOB_NUM_NODES='1')
    procs.append(subprocess.Popen(
        ['bash', os.path.join(LAUNCH, 'slurm_task.sh'),
         '--config=configs/digits_cdc.py:tiny', f'--workdir={workdir}'],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True))
  outputs = [p.communicate(timeout=600)[0] for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  assert 'Devices: 4 (cpu) on 2 process(es)' in outputs[0]
  with open(workdir / 'metrics.jsonl') as f:
    records = [json.loads(l) for l in f]
  assert records[-1]['split'] == 'eval' and records[-1]['num_examples'] == 1797
