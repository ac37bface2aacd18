"""Benchmarks you can rerun.

  python -m cdcjax.bench digits --seeds=0,1,2

`digits` runs the full training command once per seed in a fresh workdir, as a
user would (new process: imports, compilation and evaluation included), and
reports wall time and final ACC / NMI / ARI with mean and standard deviation.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds to run.')
_CONFIG = flags.DEFINE_string('config', 'configs/digits_cdc.py',
                              'Config file for the `digits` benchmark.')
_OUT = flags.DEFINE_string('out', None, 'Optional JSON file for the summary.')
_EXTRA = flags.DEFINE_multi_string('override', [],
                                   'Extra --config.x=y overrides.')


def _final_eval(workdir: str) -> dict:
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    evals = [json.loads(l) for l in f if '"eval"' in l]
  return evals[-1]


def bench_training(config: str, seeds, overrides) -> dict:
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  runs = []
  with tempfile.TemporaryDirectory(prefix='cdcjax_bench_') as root:
    for seed in seeds:
      workdir = os.path.join(root, f'seed{seed}')
      cmd = [sys.executable, '-m', 'cdcjax.main', f'--config={config}',
             f'--workdir={workdir}', f'--config.seed={seed}',
             *[f'--config.{o}' for o in overrides]]
      start = time.time()
      proc = subprocess.run(cmd, cwd=repo_root, capture_output=True,
                            text=True)
      wall = time.time() - start
      if proc.returncode != 0:
        sys.exit(f'seed {seed} failed:\n{proc.stderr[-3000:]}')
      result = _final_eval(workdir)
      runs.append({'seed': int(seed), 'wall_s': wall,
                   **{k: result[k] for k in ('acc', 'nmi', 'ari', 'step')}})
      print(f'seed {seed}: ACC {result["acc"]:.4f} NMI {result["nmi"]:.4f} '
            f'ARI {result["ari"]:.4f} wall {wall:.1f} s', flush=True)
  summary = {'config': config, 'overrides': list(overrides), 'runs': runs,
             'machine': f'{platform.machine()}, {os.cpu_count()} cores'}
  for key in ('acc', 'nmi', 'ari', 'wall_s'):
    values = np.array([r[key] for r in runs])
    summary[key] = {'mean': float(values.mean()), 'std': float(values.std()),
                    'max': float(values.max())}
  return summary


def main(argv):
  if len(argv) != 2 or argv[1] != 'digits':
    sys.exit('usage: python -m cdcjax.bench digits [--seeds=0,1,2]')
  summary = bench_training(_CONFIG.value, _SEEDS.value, _EXTRA.value)
  print('mean ± std over seeds ' + ','.join(_SEEDS.value) + ': ' + ', '.join(
      f'{k.upper()} {summary[k]["mean"]:.4f} ± {summary[k]["std"]:.4f}'
      for k in ('acc', 'nmi', 'ari')) +
        f'; wall {summary["wall_s"]["mean"]:.1f} ± '
        f'{summary["wall_s"]["std"]:.1f} s (max {summary["wall_s"]["max"]:.1f})'
        f' on {summary["machine"]}')
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(summary, f, indent=2)


if __name__ == '__main__':
  app.run(main)
