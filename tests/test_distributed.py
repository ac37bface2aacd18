"""One training step on 1 and on several (fake CPU) devices gives the same
result, for every method; per-device BatchNorm is a real switch."""

import jax
import numpy as np
import pytest

from cdcjax import config_validation
from cdcjax import recipes
from cdcjax import data
from cdcjax import methods
from cdcjax import train

pytestmark = pytest.mark.skipif(
    jax.device_count() < 8, reason='needs 8 devices; set JAX_NUM_CPU_DEVICES=8 '
    '(tests/conftest.py does)')


def _config(method):
  contrast, cluster_heads = 'in_batch', 1
  if method == 'cdc_moco_v3':
    method, contrast = 'cdc', 'moco_v3'
  if method == 'cdc_3_heads':
    method, cluster_heads = 'cdc', 3
  balance, arithmetic = 1.0, 'log'
  if method == 'cdc_unbalanced':  # Relaxed Sinkhorn: still global marginals.
    method, balance = 'cdc', 0.5
  if method == 'cdc_swav_exp':  # SwAV's exp-domain Sinkhorn: global sums.
    method, arithmetic = 'cdc', 'exp'
  config = recipes.set_method(recipes.digits('tiny'), method,
                                    'tiny')
  config.loss.sinkhorn_balance = balance
  config.loss.sinkhorn_arithmetic = arithmetic
  config.loss.contrast = contrast
  config.model.num_cluster_heads = cluster_heads
  if contrast == 'moco_v3':
    # The predictor's input BatchNorm cancels the heads' output biases, so
    # their true gradient is 0 and Adam's first step (about lr * sign(g))
    # would turn float noise into +-lr differences; SGD compares the math.
    config.optimizer.name = 'sgd'
    config.optimizer.learning_rate = 0.1
  config.batch_size = 32
  if method == 'selflabel':  # Low threshold: some samples pass at init.
    config.self_label.threshold = 0.5
  return config


def _one_step(num_devices, config, source, bn_groups=None):
  mesh = train.make_mesh(jax.devices()[:num_devices])
  trainer = train.Trainer(config, mesh, source.images.shape[1:], len(source),
                          bn_groups=bn_groups)
  dataset = data.train_dataset(source, batch_size=config.batch_size,
                               seed=config.seed, aug_config=config.aug,
                               weak_view_a=config.method == 'selflabel')
  init = jax.device_get(trainer.state)
  metrics = trainer.step(dataset[0])
  return jax.device_get(metrics), jax.device_get(trainer.state), trainer, init


def _assert_same_state(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4,
                                                        atol=1e-6),
               (a.params, a.batch_stats), (b.params, b.batch_stats))


# CDC and self-labeling in the default suite; the peers, the MoCo v3
# contrast, the multi-head and the two Sinkhorn variants with the slow tests
# (python -m pytest -m slow), for time.
@pytest.mark.parametrize('method', [
    pytest.param(m, marks=() if m in ('cdc', 'selflabel') else pytest.mark.slow)
    for m in methods.METHODS] + [
        pytest.param(m, marks=pytest.mark.slow) for m in (
            'cdc_moco_v3', 'cdc_3_heads', 'cdc_unbalanced', 'cdc_swav_exp')])
def test_one_step_same_on_1_and_8_devices(method):
  config = _config(method)
  source = data.load_digits(8)
  metrics_1, state_1, _, init = _one_step(1, config, source)
  metrics_8, state_8, trainer_8, _ = _one_step(8, config, source)
  # The 8-device step really split the batch over 8 devices.
  batch = trainer_8.to_global({'view_a': np.zeros((32, 8, 8, 1), np.float32)})
  assert len(batch['view_a'].sharding.device_set) == 8
  assert batch['view_a'].addressable_shards[0].data.shape[0] == 4
  assert set(metrics_1) == set(metrics_8)
  for key in metrics_1:
    np.testing.assert_allclose(metrics_1[key], metrics_8[key], rtol=1e-5,
                               atol=1e-6, err_msg=key)
  _assert_same_state(state_1, state_8)
  if method == 'cdc_3_heads':  # The per-head loss averages agree too.
    np.testing.assert_allclose(state_1.head_losses, state_8.head_losses,
                               rtol=1e-5)
    assert state_1.head_losses.shape == (3,)
  if method == 'cdc_moco_v3':  # The momentum copies agree too.
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4,
                                                          atol=1e-6),
                 state_1.ema_params, state_8.ema_params)
  # The step changed the parameters, so the comparison is not vacuous.
  moved = jax.tree.leaves(jax.tree.map(lambda a, b: np.abs(a - b).max(),
                                       init.params, state_1.params))
  assert max(moved) > 1e-5
  if method == 'selflabel':
    assert metrics_1['confident_fraction'] > 0


@pytest.mark.slow
def test_per_device_batch_norm():
  config = _config('cdc')
  config.model.batch_norm = 'per_device'
  source = data.load_digits(8)
  metrics_8, state_8, _, _ = _one_step(8, config, source)
  # Same as one device computing statistics over 8 slices of 4.
  metrics_ref, state_ref, _, _ = _one_step(1, config, source, bn_groups=8)
  np.testing.assert_allclose(metrics_8['loss'], metrics_ref['loss'], rtol=1e-5)
  _assert_same_state(state_8, state_ref)
  # And not the same as synchronised BatchNorm.
  config.model.batch_norm = 'global'
  metrics_global, _, _, _ = _one_step(8, config, source)
  assert abs(metrics_global['loss'] - metrics_8['loss']) > 1e-4


def test_eval_batches_not_divisible_by_the_device_count_are_padded():
  """eval_batch_size=100 on 8 devices: batches of 104, every image embedded
  once, the same outputs as one device with batches of 100."""
  config = _config('cdc')
  config.eval_batch_size = 100
  config_validation.validate(config, 8)
  source = data.load_source(config.data)
  outputs = {}
  for n in (1, 8):
    trainer = train.Trainer(config, train.make_mesh(jax.devices()[:n]),
                            source.images.shape[1:], len(source))
    assert trainer.eval_batch_size == {1: 100, 8: 104}[n]
    outputs[n] = trainer.embed(source)
  assert outputs[8]['c'].shape == (len(source), config.num_clusters)
  for key in outputs[1]:
    np.testing.assert_allclose(outputs[8][key], outputs[1][key], rtol=1e-4,
                               atol=1e-5, err_msg=key)
