"""cdcjax.aot: the trainer's own train and eval steps compile for a TPU slice
on this CPU (libtpu's topology descriptions, the tpu extra), with positive
memory and FLOPs and the gradient all-reduce among the collectives."""

import os
import subprocess
import sys

import pytest

from cdcjax import aot
from cdcjax.bench import step as bench_step
from cdcjax import config_validation

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
  import libtpu  # pylint: disable=unused-import
except ImportError:
  libtpu = None
needs_libtpu = pytest.mark.skipif(
    libtpu is None and not os.environ.get('CI'),
    reason="libtpu is not installed (pip install -e '.[test]' brings it)")


@pytest.fixture(scope='module')
def tiny_v5e():
  config = bench_step.load_config('configs/digits_cdc.py:tiny')
  devices = aot.topology_devices('v5e:2x2')
  return aot.compile_for_devices(config, devices, topology='v5e:2x2')


@needs_libtpu
def test_tiny_cdc_compiles_for_v5e_2x2(tiny_v5e):
  report, trainer = tiny_v5e.report, tiny_v5e.trainer
  assert report['devices'] == 4 and report['chip'] == 'v5e'
  assert trainer.mesh.devices.flat[0].platform == 'tpu'
  # The trainer's own jitted steps were compiled: the module is jit(train_step)
  # of train.make_train_step, and its inputs are the trainer's state and batch.
  assert report['train_step']['hlo_module'].startswith('jit_train_step')
  assert report['embed_step']['hlo_module'].startswith('jit_embed_step')
  compiled = tiny_v5e.compiled['train_step']
  state_arg, batch_arg = compiled.args_info[0]
  assert set(batch_arg) == {'view_a', 'view_b'}
  assert batch_arg['view_a'].shape == (64, 8, 8, 1)
  import jax  # pylint: disable=g-import-not-at-top
  assert (jax.tree.structure(state_arg) ==
          jax.tree.structure(trainer.state))
  for name in ('train_step', 'embed_step'):
    r = report[name]
    assert r['flops'] > 0 and r['bytes_accessed'] > 0
    assert r['argument_bytes'] > 0 and r['total_bytes'] > 0 and r['fits']
    assert r['roofline_step_s'] > 0 and 0 < r['fraction_of_peak'] <= 1
  # Data parallelism: the gradient (every parameter) is all-reduced.
  num_params = sum(x.size for x in jax.tree.leaves(trainer.state.params))
  reduced = report['train_step']['collectives']['all-reduce']['bytes']
  assert reduced >= 4 * num_params
  text = aot.format_report(report)
  assert 'v5e:2x2: 4 x v5e on 1 host(s)' in text and 'all-reduce' in text


@needs_libtpu
def test_kmeans_compiles_for_v5e_2x2_with_the_points_sharded():
  report = aot.compile_kmeans(aot.topology_devices('v5e:2x2'), 1000, 16, 10,
                              topology='v5e:2x2')
  assert report['devices'] == 4
  for name in ('kmeans', 'plus_plus_step', 'lloyd_iteration'):
    assert report[name]['flops'] > 0 and report[name]['fits'], name
  # The per-cluster sums and counts are all-reduced over the slice (the
  # points stay where they are): at least K x D floats.
  reduced = report['lloyd_iteration']['collectives']['all-reduce']['bytes']
  assert reduced >= 4 * 10 * 16
  # Each chip holds a quarter of the points, not all of them.
  assert report['kmeans']['argument_bytes'] < 4 * 1000 * 16
  text = aot.format_kmeans_report(report)
  assert 'k-means of 1000 x 16 into 10 clusters' in text


@needs_libtpu
def test_multi_host_topology_validates_for_its_device_count():
  devices = aot.topology_devices('v5e:4x4')
  assert len(devices) == 16 and len({d.process_index for d in devices}) == 4
  config = bench_step.load_config('configs/digits_cdc.py:tiny',
                                  ['batch_size=24'])
  with pytest.raises(config_validation.ConfigError,
                     match='batch_size=24.*device count 16'):
    aot.compile_for_devices(config, devices)


def test_collectives_are_read_from_hlo_text():
  hlo = '''HloModule jit_train_step, entry_computation_layout={}

%all-reduce-scatter.1 (input: f32[128,26]) -> f32[32,26] {
  %all-reduce.2 = f32[128,26]{1,0:T(8,128)} all-reduce(%input), channel_id=80
  ROOT %dynamic-slice.74 = f32[32,26]{1,0} dynamic-slice(%all-reduce.2)
}

ENTRY %main.1 (p: f32[4]) -> f32[4] {
  %all-reduce.3 = (f32[8]{0:T(128)S(1)}, bf16[3,3,8,8]{3,2,1,0:T(8,128)(2,1)}) all-reduce(%a, %b), channel_id=5
  %all-gather-start = (bf16[32,26]{1,0}, bf16[128,26]{1,0}) all-gather-start(%c), channel_id=6
  %all-gather-done = bf16[128,26]{1,0} all-gather-done(%all-gather-start)
  %collective-permute-start.5 = (s32[16]{0}, s32[16]{0}, u32[]{:S(2)}, u32[]{:S(2)}) collective-permute-start(%d), channel_id=64
  ROOT %x = f32[4]{0} add(%p, %p)
}
'''
  found = aot.collectives(hlo)
  assert found['all-reduce-scatter'] == {
      'count': 1, 'bytes': 128 * 26 * 4, 'largest': 'f32[128,26]',
      'largest_bytes': 128 * 26 * 4}
  assert found['all-reduce']['bytes'] == 8 * 4 + 9 * 64 * 2
  assert found['all-gather']['count'] == 1  # The start, not the done.
  assert found['all-gather']['bytes'] == 128 * 26 * 2
  assert found['collective-permute']['bytes'] == 16 * 4


def test_cli_refuses_an_unknown_topology():
  result = subprocess.run(
      [sys.executable, '-m', 'cdcjax.aot', '--config=configs/digits_cdc.py:tiny',
       '--topology=v5e-8'], cwd=REPO_ROOT, capture_output=True, text=True,
      timeout=300)
  assert result.returncode != 0
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: --topology='v5e-8': libtpu gave no "
                         'topology'), result.stderr[-2000:]
  assert 'Traceback' not in result.stderr
