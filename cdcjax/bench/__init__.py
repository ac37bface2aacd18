"""Benchmarks you can rerun.

  python -m cdcjax.bench digits --seeds=0,1,2
  python -m cdcjax.bench train --config=configs/usps_cdc.py --seeds=0
  python -m cdcjax.bench ablations --config=configs/mnist_cdc.py \
      --override=total_steps=1500
  python -m cdcjax.bench ablations --config=configs/digits_cdc.py \
      --seeds=0,1,2 --jobs=2
  python -m cdcjax.bench input --sizes=32,224 --workers=1,2
  python -m cdcjax.bench step --config=configs/imagenet_cdc.py:tiny
  python -m cdcjax.bench step --config=configs/cifar10_cdc.py --against=torch \
      --override=batch_size=64 --override=model.compute_dtype=float32
  python -m cdcjax.bench accelerator --out=/tmp/accelerator.json
  python -m cdcjax.bench kmeans --points=20000 --dim=256 --clusters=500
  python -m cdcjax.bench probe --points=50000 --dim=512 --clusters=10

`digits` (`train` with the default config, digits CDC) and `train` run the
training command once per seed in a fresh workdir, as a user would (new
process: imports, compilation and evaluation included), and report wall time
and final ACC / NMI / ARI with mean and standard deviation.

`ablations` runs the CDC paper's Table VI variants (full model, without the
equipartition constraint, without normalisation of c (also with SwAV's
exp-domain Sinkhorn, which can overflow to NaN), tau_c = 1, without
InfoNCE) with the same config, seeds and budget, and prints a table with the
clustering ACC, the cluster-size entropy (1 balanced, 0 collapsed) and the
linear-probe ACC (mean +- std over the seeds, and each seed's ACC). A run
that stops on a non-finite loss or gradient norm is reported as diverged,
with the step, from its error message; any other error as failed, with its
message; a variant with a diverged or failed seed gets no mean.
`--jobs=N` runs N trainings at once (`train`, `digits`, `ablations`): small
models leave cores idle, but wall times measured side by side are not the
ones measured alone.

`input` measures the training input pipeline against a PyTorch DataLoader
doing the same recipe (cdcjax/bench/input_pipeline.py); `step` the training step's
throughput and FLOP/s on a fixed batch (cdcjax/bench/step.py);
`accelerator` the one-shot GPU/TPU measurement (cdcjax/bench/accelerator.py:
the ImageNet head step in bf16 and f32, the CIFAR-10 step, a fixed-budget
CIFAR-10 run), into one JSON file (--out); `kmeans` the on-device k-means
against scikit-learn's on planted clusters, `probe` the linear probe's fit
(cdcjax/bench/kmeans.py).
"""

import concurrent.futures
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

from cdcjax.errors import (NON_FINITE_GRAD_NORM_AT_STEP,
                           NON_FINITE_LOSS_AT_STEP)

_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds to run.')
_CONFIG = flags.DEFINE_string('config', 'configs/digits_cdc.py',
                              'Config file to run.')
_OUT = flags.DEFINE_string('out', None, 'Optional JSON file for the summary.')
_EXTRA = flags.DEFINE_multi_string('override', [],
                                   'Extra --config.x=y overrides.')
_SIZES = flags.DEFINE_list('sizes', ['32', '224'], 'input: image sides.')
_WORKERS = flags.DEFINE_list('workers', ['1', '2'], 'input: worker counts.')
_BATCHES = flags.DEFINE_integer('batches', 10, 'input: timed batches of 256.')
_STEPS = flags.DEFINE_integer('steps', 10, 'step: timed steps.')
_JOBS = flags.DEFINE_integer('jobs', 1, 'train/digits/ablations: trainings '
                             'run at the same time.')
_POINTS = flags.DEFINE_integer('points', 20000, 'kmeans: points.')
_DIM = flags.DEFINE_integer('dim', 256, 'kmeans: dimensions.')
_CLUSTERS = flags.DEFINE_integer('clusters', 500, 'kmeans: clusters.')
_STD = flags.DEFINE_float('std', 10.0, 'kmeans: planted clusters\' std.')
_SKLEARN_INITS = flags.DEFINE_integer('sklearn_inits', 10,
                                      'kmeans: scikit-learn\'s n_init.')
_AGAINST = flags.DEFINE_string('against', '', "step: 'torch' times the same "
                               "step in PyTorch beside it; kmeans: 'ott' times "
                               "ott-jax's k_means beside it.")
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'step --against: alternating '
                               'timing rounds (medians compared).')
_DATA = flags.DEFINE_string('data', 'blobs', "kmeans: 'blobs' (planted), "
                            "'digits' or 'usps' (pixels, classes).")
_COMPILED_TIMING = flags.DEFINE_bool(
    'compiled_timing', True, 'kmeans: time a second, compiled call too.')
_PEAK = flags.DEFINE_float('peak_tflops', 0.0,
                           "step: the devices' peak TFLOP/s, for the fraction.")

# The CDC paper's Table VI rows, as config overrides.
ABLATIONS = {
    'full CDC': [],
    'without equipartition': ['loss.use_equipartition=False'],
    'without normalisation of c': ['loss.normalize_c=False'],
    # The same in SwAV's exp(S / eps) arithmetic (exact equipartition only),
    # where large unnormalised c overflows: the paper's NaN.
    'without normalisation of c, SwAV exp Sinkhorn': [
        'loss.normalize_c=False', 'loss.sinkhorn_arithmetic=exp',
        'loss.sinkhorn_balance=1.0'],
    'tau_c = 1': ['loss.cluster_temperature=1.0'],
    'without InfoNCE': ['loss.use_infonce=False'],
}
_BUDGET = flags.DEFINE_float('budget_s', 240.0, 'accelerator: seconds of '
                             'CIFAR-10 training in the fixed-budget run.')
_TINY = flags.DEFINE_bool('tiny', False, "accelerator: the configs' tiny "
                          'variants (tests, CPUs).')
COMMANDS = ('digits', 'train', 'ablations', 'input', 'step', 'accelerator',
            'kmeans', 'probe')


def _final_eval(workdir: str) -> dict | None:
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    evals = [json.loads(l) for l in f if '"eval"' in l]
  return evals[-1] if evals else None


# The checkout (cdcjax/bench/ is two levels down): runs start there, so
# relative --config paths resolve as they do for the user.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def run_once(config: str, seed, overrides, root: str, name: str) -> dict:
  """One training run in a fresh workdir; returns its final evaluation, or
  {'failure': <its error line>} when it exits with an error."""
  workdir = os.path.join(root, name)
  cmd = [sys.executable, '-m', 'cdcjax.main', f'--config={config}',
         f'--workdir={workdir}', f'--config.seed={seed}',
         *[f'--config.{o}' for o in overrides]]
  start = time.time()
  proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
  wall = time.time() - start
  if proc.returncode != 0:
    errors = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
    return {'failure': errors[-1] if errors else proc.stderr[-2000:],
            'wall_s': wall}
  return {**_final_eval(workdir), 'wall_s': wall}


def run_many(config: str, tasks, root: str, jobs: int) -> list[dict]:
  """run_once for each (seed, overrides, name) in `tasks`, `jobs` at a time;
  results in the order of `tasks`."""
  if jobs < 1:
    raise ValueError(f'jobs={jobs}; allowed: an integer >= 1')
  with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
    futures = {pool.submit(run_once, config, seed, overrides, root, name): name
               for seed, overrides, name in tasks}
    for done in concurrent.futures.as_completed(futures):  # Progress.
      result = done.result()
      outcome = (f'failed: {result["failure"][:200]}' if 'failure' in result
                 else f'ACC {result["acc"]:.4f}')
      print(f'  {futures[done]}: {outcome} ({result["wall_s"]:.0f} s)',
            file=sys.stderr, flush=True)
    return [f.result() for f in futures]


def bench_training(config: str, seeds, overrides, jobs: int = 1) -> dict:
  with tempfile.TemporaryDirectory(prefix='cdcjax_bench_') as root:
    results = run_many(config, [(s, overrides, f'seed{s}') for s in seeds],
                       root, jobs)
  runs = []
  for seed, result in zip(seeds, results):
    if 'failure' in result:
      sys.exit(f'seed {seed} failed: {result["failure"]}')
    # The whole final evaluation record (other evaluators, cluster sizes).
    runs.append({'seed': int(seed), **result})
    print(f'seed {seed}: ACC {result["acc"]:.4f} NMI {result["nmi"]:.4f} '
          f'ARI {result["ari"]:.4f} wall {result["wall_s"]:.1f} s',
          flush=True)
  summary = {'config': config, 'overrides': list(overrides), 'runs': runs,
             'jobs': jobs,
             'machine': f'{platform.machine()}, {os.cpu_count()} cores'}
  for key in ('acc', 'nmi', 'ari', 'wall_s'):
    values = np.array([r[key] for r in runs])
    summary[key] = {'mean': float(values.mean()), 'std': float(values.std()),
                    'max': float(values.max())}
  print('mean ± std over seeds ' + ','.join(str(s) for s in seeds) + ': ' +
        ', '.join(f'{k.upper()} {summary[k]["mean"]:.4f} ± '
                  f'{summary[k]["std"]:.4f}' for k in ('acc', 'nmi', 'ari')) +
        f'; wall {summary["wall_s"]["mean"]:.1f} ± '
        f'{summary["wall_s"]["std"]:.1f} s (max {summary["wall_s"]["max"]:.1f})'
        f' on {summary["machine"]}' +
        (f', {jobs} runs at a time' if jobs > 1 else ''))
  return summary


def _mean_std(values, digits: int) -> str:
  values = np.asarray(values, dtype=np.float64)
  if len(values) == 1:
    return f'{values[0]:.{digits}f}'
  return f'{values.mean():.{digits}f} ± {values.std():.{digits}f}'


_DIVERGED_AT = re.compile(
    '(' + re.escape(NON_FINITE_LOSS_AT_STEP) + '|' +
    re.escape(NON_FINITE_GRAD_NORM_AT_STEP) + r') (\d+)')


def ablation_row(name: str, results) -> str:
  """One table row from a variant's runs (one dict per seed, or one dict)."""
  if isinstance(results, dict):
    results = [results]
  failures = [r['failure'] for r in results if 'failure' in r]
  if failures:
    # Only the trainer's non-finite loss or gradient stop is a divergence;
    # any other error (a bad override, a crash) is a failure, in full.
    steps = [_DIVERGED_AT.search(f) for f in failures]
    if all(steps):
      return (f'| {name} | diverged in {len(failures)} of {len(results)} '
              f'runs ({steps[0].group(1)} '
              f'{", ".join(m.group(2) for m in steps)}) | | | |')
    other = next(f for f, m in zip(failures, steps) if not m)
    return (f'| {name} | failed in {len(failures)} of {len(results)} runs: '
            f'{other} | | | |')
  acc = _mean_std([r['acc'] for r in results], 4)
  if len(results) > 1:
    acc += ' (' + ' / '.join(f'{r["acc"]:.4f}' for r in results) + ')'
  probes = [r.get('linear_probe', {}).get('acc') for r in results]
  probe = '-' if None in probes else _mean_std(probes, 4)
  return (f'| {name} | {acc} | {_mean_std([r["nmi"] for r in results], 4)} | '
          f'{_mean_std([r["cluster_size_entropy"] for r in results], 3)} | '
          f'{probe} |')


def bench_ablations(config: str, seeds, overrides, jobs: int = 1) -> dict:
  tasks = [(seed, [*overrides, *extra], f'v{i}_seed{seed}')
           for i, extra in enumerate(ABLATIONS.values()) for seed in seeds]
  with tempfile.TemporaryDirectory(prefix='cdcjax_ablation_') as root:
    flat = run_many(config, tasks, root, jobs)
  results = {name: flat[i * len(seeds):(i + 1) * len(seeds)]
             for i, name in enumerate(ABLATIONS)}
  rows = [ablation_row(name, runs) for name, runs in results.items()]
  seeds_text = ','.join(str(s) for s in seeds)
  print(f'| variant | ACC (seeds {seeds_text}) | NMI | cluster-size entropy '
        '| linear probe ACC |')
  print('|---|---|---|---|---|')
  print('\n'.join(rows), flush=True)
  return {'config': config, 'seeds': [int(s) for s in seeds],
          'overrides': list(overrides), 'jobs': jobs,
          'machine': f'{platform.machine()}, {os.cpu_count()} cores',
          'variants': results, 'table': rows}


def main(argv):
  if len(argv) != 2 or argv[1] not in COMMANDS:
    sys.exit(f'usage: python -m cdcjax.bench {{{"|".join(COMMANDS)}}} '
             '[--config=...] [--seeds=0,1,2] [--override=x=y]')
  if _JOBS.value < 1:
    sys.exit(f'--jobs={_JOBS.value}; allowed: an integer >= 1')
  if argv[1] == 'accelerator':
    from cdcjax.bench import accelerator as bench_accelerator  # pylint: disable=g-import-not-at-top
    bench_accelerator.measure(_OUT.value or '/tmp/cdcjax_accelerator.json',
                              budget_s=_BUDGET.value, tiny=_TINY.value,
                              steps=_STEPS.value)
    return
  if argv[1] == 'kmeans':
    from cdcjax.bench import kmeans as bench_kmeans  # pylint: disable=g-import-not-at-top
    summary = bench_kmeans.bench_kmeans(
        _POINTS.value, _DIM.value, _CLUSTERS.value, _STD.value,
        [int(s) for s in _SEEDS.value], _SKLEARN_INITS.value,
        _COMPILED_TIMING.value, _DATA.value, _AGAINST.value)
  elif argv[1] == 'probe':
    from cdcjax.bench import kmeans as bench_kmeans  # pylint: disable=g-import-not-at-top
    summary = bench_kmeans.bench_probe(_POINTS.value, _DIM.value,
                                       _CLUSTERS.value,
                                       [int(s) for s in _SEEDS.value])
  elif argv[1] == 'step':
    from cdcjax.bench import step as bench_step  # pylint: disable=g-import-not-at-top
    summary = bench_step.bench_step(_CONFIG.value, _EXTRA.value,
                                    steps=_STEPS.value,
                                    peak_tflops=_PEAK.value,
                                    against=_AGAINST.value,
                                    rounds=_ROUNDS.value)
  elif argv[1] == 'input':
    from cdcjax.bench import input_pipeline as bench_input  # pylint: disable=g-import-not-at-top
    summary = bench_input.bench_input([int(s) for s in _SIZES.value],
                                      [int(w) for w in _WORKERS.value],
                                      batches=_BATCHES.value)
  elif argv[1] == 'ablations':
    summary = bench_ablations(_CONFIG.value, _SEEDS.value, _EXTRA.value,
                               _JOBS.value)
  else:
    summary = bench_training(_CONFIG.value, _SEEDS.value, _EXTRA.value,
                             _JOBS.value)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(summary, f, indent=2)

