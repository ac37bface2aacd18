"""The benchmark's ablation variants are valid configs and differ as named;
failed runs are reported as such, never as numbers."""

import os
import subprocess
import sys

import numpy as np
import pytest

from cdcjax import bench
from cdcjax import config_validation
from cdcjax import recipes


def _apply(config, override):
  field, value = override.split('=')
  *path, leaf = field.split('.')
  node = config
  for part in path:
    node = node[part]
  if isinstance(node[leaf], str):
    node[leaf] = value
  else:
    node[leaf] = type(node[leaf])(value == 'True' if value in ('True', 'False')
                                  else float(value))


@pytest.mark.parametrize('name', list(bench.ABLATIONS))
def test_ablation_variants_are_valid_and_change_one_thing(name):
  base = recipes.digits()
  config = recipes.digits()
  for override in bench.ABLATIONS[name]:
    _apply(config, override)
  config_validation.validate(config, 1)
  changed = [k for k in ('use_equipartition', 'normalize_c',
                         'cluster_temperature', 'use_infonce')
             if config.loss[k] != base.loss[k]]
  assert len(changed) == (0 if name == 'full CDC' else 1)
  # Besides the switch, only the arithmetic of the SwAV row changes.
  swav = config.loss.sinkhorn_arithmetic != base.loss.sinkhorn_arithmetic
  assert swav == name.endswith('SwAV exp Sinkhorn')


def test_ablation_row_reports_failures_as_failures():
  row = bench.ablation_row('without normalisation of c', {
      'failure': 'error: non-finite loss at step 50', 'wall_s': 1.0})
  assert 'diverged in 1 of 1 runs (non-finite loss at step 50)' in row
  # Any other error is a failure, not a divergence, and keeps its message.
  message = ('error: config.loss.sinkhorn_arithmetic=' + "'x'" * 60 +
             '; allowed: log, exp')
  row = bench.ablation_row('without normalisation of c', [
      {'failure': 'error: non-finite loss at step 50', 'wall_s': 1.0},
      {'failure': message, 'wall_s': 1.0}])
  assert 'diverged' not in row
  assert f'failed in 2 of 2 runs: {message} |' in row
  row = bench.ablation_row('full CDC', {
      'acc': 0.9, 'nmi': 0.8, 'cluster_size_entropy': 0.99,
      'linear_probe': {'acc': 0.95}})
  assert row == '| full CDC | 0.9000 | 0.8000 | 0.990 | 0.9500 |'


def _tiny_colour_source(n=300, size=8):
  from cdcjax import data  # pylint: disable=g-import-not-at-top
  images = np.random.default_rng(0).integers(0, 256, (n, size, size, 3))
  return data.ArraySource(images.astype(np.uint8), np.zeros(n, np.int64), 1,
                          'tiny')


def test_input_bench_measures_both_sizes():
  from cdcjax.bench import input_pipeline as bench_input  # pylint: disable=g-import-not-at-top
  source = _tiny_colour_source()
  for size in (8, 24):
    assert bench_input.cdcjax_rate(source, size, workers=1, warmup=1,
                                   batches=1) > 0


def test_input_bench_torch_reference_runs_when_installed():
  pytest.importorskip('torchvision')
  from cdcjax.bench import input_pipeline as bench_input  # pylint: disable=g-import-not-at-top
  # A DataLoader epoch ends: enough images for warm-up plus timed batches.
  images = _tiny_colour_source(n=3 * bench_input.BATCH).images
  assert bench_input.torch_rate(images, 24, workers=0, warmup=1,
                                batches=1) > 0


@pytest.mark.slow
def test_step_bench_reports_throughput_and_flops():
  from cdcjax.bench import step as bench_step  # pylint: disable=g-import-not-at-top
  config = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..',
                        'configs', 'digits_cdc.py')
  result = bench_step.bench_step(f'{config}:tiny',
                                 ['batch_size=16', 'model.freeze_backbone=True'],
                                 steps=2, warmup=1, peak_tflops=1.0)
  assert result['images_per_sec'] > 0 and result['flops_per_step'] > 0
  assert result['frozen_backbone'] and result['global_batch'] == 16
  assert 0 < result['fraction_of_peak'] < 1


def test_ablation_row_over_seeds_gives_mean_std_and_each_seed():
  runs = [{'acc': acc, 'nmi': 0.8, 'cluster_size_entropy': 0.99,
           'linear_probe': {'acc': 0.95}} for acc in (0.8, 0.9, 1.0)]
  row = bench.ablation_row('tau_c = 1', runs)
  # Population std of (0.8, 0.9, 1.0) is 0.0816.
  assert row.startswith('| tau_c = 1 | 0.9000 ± 0.0816 (0.8000 / 0.9000 / '
                        '1.0000) | 0.8000 ± 0.0000 |')
  failed = bench.ablation_row('without normalisation of c', [
      runs[0], {'failure': 'error: non-finite loss at step 9', 'wall_s': 1.0}])
  assert 'diverged in 1 of 2 runs' in failed and 'step 9' in failed
  assert '0.8000' not in failed  # No mean over the runs that survived.


def test_run_many_keeps_task_order_and_runs_jobs_at_once(monkeypatch):
  import threading  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  running, peak, lock = [0], [0], threading.Lock()

  def fake_run_once(config, seed, overrides, root, name):
    with lock:
      running[0] += 1
      peak[0] = max(peak[0], running[0])
    time.sleep(0.05 * (3 - int(seed)))  # Later tasks finish first.
    with lock:
      running[0] -= 1
    return {'acc': float(seed), 'wall_s': 0.0, 'name': name}

  monkeypatch.setattr(bench, 'run_once', fake_run_once)
  tasks = [(s, [], f'seed{s}') for s in (0, 1, 2)]
  results = bench.run_many('cfg', tasks, '/unused', jobs=2)
  assert [r['name'] for r in results] == ['seed0', 'seed1', 'seed2']
  assert peak[0] == 2
  assert [r['name'] for r in bench.run_many('cfg', tasks, '/unused', 1)] == [
      'seed0', 'seed1', 'seed2']
  with pytest.raises(ValueError, match='jobs=0'):
    bench.run_many('cfg', tasks, '/unused', jobs=0)


def test_training_runs_start_in_the_checkout(monkeypatch, tmp_path):
  """`bench train --config=configs/X.py` runs `cdcjax.main` from the
  repository root, where the relative config path resolves."""
  assert os.path.isfile(os.path.join(bench.REPO_ROOT, 'configs',
                                     'digits_cdc.py'))
  seen = {}

  def fake_run(cmd, cwd, **kwargs):
    seen['cwd'] = cwd
    return subprocess.CompletedProcess(cmd, 2, '', 'error: stop here')

  monkeypatch.setattr(subprocess, 'run', fake_run)
  result = bench.run_once('configs/digits_cdc.py', 0, [], str(tmp_path), 'a')
  assert seen['cwd'] == bench.REPO_ROOT
  assert result['failure'] == 'error: stop here'


def test_kmeans_bench_against_ott_names_what_is_missing_or_allowed(
    monkeypatch):
  from cdcjax.bench import kmeans as bench_kmeans  # pylint: disable=g-import-not-at-top
  with pytest.raises(SystemExit, match="--against='faiss'; allowed"):
    bench_kmeans.bench_kmeans(40, 2, 2, std=1.0, seeds=[0], against='faiss')
  monkeypatch.setitem(sys.modules, 'ott', None)  # As if not installed.
  monkeypatch.setitem(sys.modules, 'ott.tools', None)
  with pytest.raises(SystemExit, match='--against=ott needs ott-jax'):
    bench_kmeans.bench_kmeans(40, 2, 2, std=1.0, seeds=[0], against='ott')


def test_kmeans_bench_times_ott_beside_cdcjax():
  pytest.importorskip('ott', reason="ott-jax is in the 'bench' extra only")
  from cdcjax.bench import kmeans as bench_kmeans  # pylint: disable=g-import-not-at-top
  summary = bench_kmeans.bench_kmeans(400, 8, 4, std=1.0, seeds=[0],
                                      sklearn_inits=0, against='ott')
  (run,) = summary['runs']
  assert run['ott_s'] > 0 and run['ott_first_call_s'] > 0
  assert run['ott_nmi'] == pytest.approx(1.0)
  assert run['cdcjax_nmi'] == pytest.approx(1.0)
  assert run['ott_inertia'] == pytest.approx(run['cdcjax_inertia'], rel=1e-4)
  # K comes from the data here (10 classes), not from the argument.
  summary = bench_kmeans.bench_kmeans(0, 0, 500, std=0.0, seeds=[0],
                                      sklearn_inits=0, data='digits',
                                      against='ott')
  (run,) = summary['runs']
  assert summary['clusters'] == 10
  assert abs(run['ott_nmi'] - run['cdcjax_nmi']) < 0.05


def test_kmeans_and_probe_benches_report_both_sides():
  from cdcjax.bench import kmeans as bench_kmeans  # pylint: disable=g-import-not-at-top
  summary = bench_kmeans.bench_kmeans(400, 8, 4, std=1.0, seeds=[0],
                                      sklearn_inits=2)
  (run,) = summary['runs']
  assert run['cdcjax_s'] > 0 and run['sklearn_s'] > 0
  assert run['cdcjax_nmi'] == pytest.approx(1.0)
  assert run['sklearn_nmi'] == pytest.approx(1.0)
  assert summary['first_call_s'] > 0 and summary['sklearn_inits'] == 2
  probe = bench_kmeans.bench_probe(300, 8, 3, seeds=[0])
  (run,) = probe['runs']
  assert abs(run['cdcjax_acc'] - run['sklearn_acc']) <= 0.02
  assert run['cdcjax_iterations'] > 1
