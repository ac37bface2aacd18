"""The one-shot accelerator measurement runs end to end on this CPU with the
tiny configs (a fake CIFAR-10 file) and writes one JSON file."""

import json
import os
import subprocess

import pytest

from cdcjax.bench import accelerator as bench_accelerator
from test_configs import _fake_colour_npz as _fake_cifar10  # pylint: disable=g-bad-import-order

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow  # 46 s; the dry run below stays in the default suite.
def test_tiny_measurement_writes_every_part(tmp_path, monkeypatch):
  monkeypatch.chdir(REPO_ROOT)
  _fake_cifar10(tmp_path / 'cifar10.npz')
  out = tmp_path / 'accelerator.json'
  bench_accelerator.measure(str(out), tiny=True, steps=1,
                            cifar10_path=str(tmp_path / 'cifar10.npz'))
  result = json.loads(out.read_text())
  assert result['tiny'] and result['platform'] == 'cpu'
  assert set(result['steps']) == {'imagenet_heads_bfloat16',
                                  'imagenet_heads_float32', 'cifar10_cdc'}
  for step in result['steps'].values():
    assert step['images_per_sec'] > 0 and step['flops_per_step'] > 0
  assert result['steps']['imagenet_heads_bfloat16']['overrides'][-1] == (
      'model.compute_dtype=bfloat16')
  assert result['steps']['imagenet_heads_float32']['frozen_backbone']
  run = result['cifar10_run']
  assert run['total_steps'] == 2 and run['num_examples'] == 40
  assert 0 <= run['acc'] <= 1 and run['wall_s'] > 0
  against = result['cifar10_against_torch']
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
    import torchvision  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    assert against.startswith('not measured: torch')
  else:
    assert against['step']['cdcjax_over_torch'] > 0
  (kmeans_run,) = result['kmeans_imagenet_head']['runs']
  assert kmeans_run['cdcjax_s'] > 0 and 'sklearn_s' not in kmeans_run


def test_measure_gpu_script_dry_run():
  out = subprocess.run(['bash', 'launch/measure_gpu.sh', '--dry-run',
                        '/tmp/x.json'], cwd=REPO_ROOT, capture_output=True,
                       text=True, timeout=60)
  assert out.returncode == 0, out.stderr
  assert out.stdout.strip() == (
      'python -m cdcjax.bench accelerator --out=/tmp/x.json')
