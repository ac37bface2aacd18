"""One training step on 1 and on 4 (fake CPU) devices gives the same result."""

import jax
import numpy as np
import pytest

from cdcjax import data
from cdcjax import train
from configs import digits_cdc


def _one_step(num_devices, config, source):
  mesh = train.make_mesh(jax.devices()[:num_devices])
  trainer = train.Trainer(config, mesh, source.images.shape[1:], len(source))
  dataset = data.train_dataset(source, batch_size=config.batch_size,
                               seed=config.seed, aug_config=config.aug)
  metrics = trainer.step(dataset[0])
  state = jax.device_get(trainer.state)
  return jax.device_get(metrics), state, trainer


@pytest.mark.skipif(jax.device_count() < 4, reason='needs 4 devices; set '
                    'JAX_NUM_CPU_DEVICES=8 (tests/conftest.py does)')
def test_one_step_same_on_1_and_4_devices():
  config = digits_cdc.get_config('tiny')
  config.batch_size = 32
  source = data.load_digits(8)
  metrics_1, state_1, trainer_1 = _one_step(1, config, source)
  metrics_4, state_4, trainer_4 = _one_step(4, config, source)
  # The 4-device step really split the batch over 4 devices.
  batch = trainer_4.to_global({'view_a': np.zeros((32, 8, 8, 1), np.float32)})
  assert len(batch['view_a'].sharding.device_set) == 4
  assert batch['view_a'].addressable_shards[0].data.shape[0] == 8
  for key in ('loss', 'infonce', 'equipartition'):
    np.testing.assert_allclose(metrics_1[key], metrics_4[key], rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4,
                                                        atol=1e-6),
               (state_1.params, state_1.batch_stats),
               (state_4.params, state_4.batch_stats))
  # The step changed the parameters, so the comparison is not vacuous.
  init = jax.device_get(train.Trainer(config, train.make_mesh(
      jax.devices()[:1]), source.images.shape[1:], len(source)).state)
  moved = jax.tree.leaves(jax.tree.map(lambda a, b: np.abs(a - b).max(),
                                       init.params, state_1.params))
  assert max(moved) > 1e-4
