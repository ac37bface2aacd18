"""Two processes on this machine over loopback (jax.distributed on CPU, gloo):
they train together, each reading its shard, and their evaluation equals the
single-process evaluation of the same checkpoint. In the slow variant the
second process starts late and compiles late (by more than the 30 s gloo
waits for a peer), as a process on a loaded host does."""

import json
import os
import socket
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _env(devices):
  return dict(os.environ, JAX_NUM_CPU_DEVICES=str(devices),
              JAX_PLATFORMS='cpu')


# The command line's main, with a process that reaches the checkpoint
# manager's first barrier 35 s late and compiles the train step 35 s late.
_LATE_PROCESS = """
import sys, time
from cdcjax import main, train
init, step = train.Trainer.__init__, train.Trainer.step
def late_init(self, *args, **kwargs):
  time.sleep(35)
  init(self, *args, **kwargs)
def late_first_step(self, batch):
  if not hasattr(self, 'late'):
    self.late = True
    time.sleep(35)
  return step(self, batch)
train.Trainer.__init__, train.Trainer.step = late_init, late_first_step
main.run()
"""


def _main(workdir, *extra, late=False):
  start = ['-c', _LATE_PROCESS] if late else ['-m', 'cdcjax.main']
  return [sys.executable, *start,
          '--config=configs/digits_cdc.py:tiny', f'--workdir={workdir}',
          '--config.evaluators=("cluster_head","kmeans_features")', *extra]


def _final_eval(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(l) for l in f if '"eval"' in l][-1]


# Two processes over loopback (a minute) with the end-to-end tests that CI
# runs second; the late second process (70 s of sleeps) with the slow tests.
@pytest.mark.parametrize('late', [
    pytest.param(False, marks=pytest.mark.e2e),
    pytest.param(True, marks=pytest.mark.slow)])
def test_two_processes_train_and_evaluate_like_one(tmp_path, late):
  workdir = str(tmp_path / 'run')
  port = _free_port()
  procs = [subprocess.Popen(
      _main(workdir, '--multihost', f'--coordinator_address=127.0.0.1:{port}',
            '--num_processes=2', f'--process_id={i}', late=late and i == 1),
      cwd=REPO_ROOT, env=_env(2), stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True) for i in range(2)]
  outputs = [p.communicate(timeout=600)[0] for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  assert 'Devices: 4 (cpu) on 2 process(es)' in outputs[0]
  multi = _final_eval(workdir)
  assert multi['num_examples'] == 1797  # Every image scored exactly once.

  # One process with 4 devices evaluates the same final checkpoint (a
  # finished run is evaluated, not retrained).
  single = subprocess.run(_main(workdir), cwd=REPO_ROOT, env=_env(4),
                          capture_output=True, text=True, timeout=600)
  assert single.returncode == 0, single.stderr[-3000:]
  assert 'evaluating the final checkpoint only' in single.stderr
  # The rerun logs its evaluation (metrics.jsonl keeps the original record).
  line = next(l for l in single.stderr.splitlines()
              if 'eval step 12 (cluster_head)' in l)
  expected = (f"ACC {multi['acc']:.4f} NMI {multi['nmi']:.4f} "
              f"ARI {multi['ari']:.4f} | cluster sizes {multi['cluster_sizes']}")
  assert expected in line, (line, expected)
