"""`bench step --against=torch`: the PyTorch side computes cdcjax's CDC loss,
builds the config's network, and configs it cannot mirror are refused by
name before anything is built."""

import numpy as np
import pytest

from cdcjax.bench import step as bench_step
from cdcjax.bench import torch_step


def _config(*overrides):
  return bench_step.load_config('configs/digits_cdc.py', overrides)


def test_configs_it_cannot_mirror_are_refused_by_name():
  with pytest.raises(ValueError, match=r'model.width=0.25 \(torchvision: '
                     r"1.0 only\).*optimizer.name='lars'"):
    torch_step._check(_config('optimizer.name=lars'))  # pylint: disable=protected-access
  with pytest.raises(ValueError, match="method='cc'"):
    torch_step._check(_config('method=cc', 'model.width=1.0'))  # pylint: disable=protected-access
  with pytest.raises(ValueError, match="allowed: 'torch' or nothing"):
    bench_step.bench_step('configs/digits_cdc.py', against='tensorflow')


@pytest.mark.parametrize('target', ['swapped', 'same'])
def test_torch_loss_is_cdcjax_loss(target):
  pytest.importorskip('torch', reason='torch is not installed (the bench '
                      "extra: pip install -e '.[bench]')")
  config = _config(f'loss.sinkhorn_target={target}')
  ours, theirs = torch_step.loss_agreement(config, seed=1)
  assert np.isfinite(ours) and abs(ours - theirs) < 1e-4 * abs(ours)


def test_torch_step_trains_the_mirrored_network():
  torch = pytest.importorskip('torch', reason='torch is not installed (the '
                              "bench extra: pip install -e '.[bench]')")
  pytest.importorskip('torchvision')
  config = _config('model.width=1.0', 'batch_size=8',
                   'model.compute_dtype=float32')
  rng = np.random.default_rng(0)
  batch = {v: rng.uniform(size=(8, 8, 8, 1)).astype(np.float32)
           for v in ('view_a', 'view_b')}
  run, forward, device = torch_step.torch_step_fn(config, batch)
  assert device.type in ('cpu', 'cuda')
  c, s = forward()
  assert tuple(c.shape) == (8, config.num_clusters)
  assert tuple(s.shape) == (8, config.model.instance_dim)
  losses = [run() for _ in range(3)]
  assert all(np.isfinite(losses)) and losses[-1] != losses[0]
  modules = torch_step._modules(config, 1)  # pylint: disable=protected-access
  assert modules['cluster_head'][-1].out_features == config.num_clusters
  assert isinstance(modules['backbone'].maxpool, torch.nn.Identity)
