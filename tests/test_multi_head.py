"""Several CDC cluster heads on one backbone: each head's loss is the
single-head CDC loss, the lowest running loss picks the predicting head, and
self-labeling starts from that head."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cdcjax import checkpoints
from cdcjax import config_validation
from cdcjax import recipes
from cdcjax import data
from cdcjax import methods
from cdcjax import metrics as metrics_lib
from cdcjax import models
from cdcjax import train


def _config(heads=3):
  config = recipes.set_method(recipes.digits('tiny'), 'cdc',
                                    'tiny')
  config.model.num_cluster_heads = heads
  config.batch_size = 32
  return config


def test_heads_have_their_own_parameters_and_head_0_keeps_its_name():
  config = _config(3)
  model = methods.make_model(config)
  x = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
  variables = model.init(jax.random.key(1), x, False)
  out = model.apply(variables, x, False)
  assert 'c' not in out and out['c_heads'].shape == (4, 3, 10)
  names = {'cluster_head', 'cluster_head_1', 'cluster_head_2'}
  assert names <= set(variables['params'])
  kernels = [variables['params'][n]['fc0']['kernel'] for n in sorted(names)]
  assert not np.allclose(kernels[0], kernels[1])  # Independently initialised.
  # Different heads give different logits.
  assert np.abs(out['c_heads'][:, 0] - out['c_heads'][:, 1]).max() > 1e-3
  single = methods.make_model(_config(1)).init(jax.random.key(1), x, False)
  assert 'cluster_head' in single['params']
  assert 'cluster_head_1' not in single['params']


def test_loss_is_the_mean_of_single_head_cdc_losses():
  config = _config(3)
  rng = np.random.default_rng(0)
  c_a, c_b = (jnp.asarray(rng.normal(size=(16, 3, 10)), jnp.float32)
              for _ in range(2))
  s_a, s_b = (jnp.asarray(rng.normal(size=(16, 8)), jnp.float32)
              for _ in range(2))
  multi = methods.loss(config, {'c_heads': c_a, 's': s_a},
                       {'c_heads': c_b, 's': s_b}, progress=0.5)
  singles = [methods.loss(config, {'c': c_a[:, h], 's': s_a},
                          {'c': c_b[:, h], 's': s_b}, progress=0.5)
             for h in range(3)]
  np.testing.assert_allclose(multi['head_losses'],
                             [s['loss'] for s in singles], rtol=1e-6)
  for key in ('loss', 'infonce', 'equipartition'):
    np.testing.assert_allclose(multi[key], np.mean([s[key] for s in singles]),
                               rtol=1e-6, err_msg=key)
  # The largest raw logit of any head and view is logged, as for one head.
  np.testing.assert_allclose(multi['c_max_abs'],
                             max(np.abs(c_a).max(), np.abs(c_b).max()))
  np.testing.assert_allclose(singles[1]['c_max_abs'], max(
      np.abs(c_a[:, 1]).max(), np.abs(c_b[:, 1]).max()))
  # The heads really differ, so the mean is not one head's loss.
  assert np.ptp(multi['head_losses']) > 1e-3


def test_running_head_losses_pick_the_predicting_head():
  config = _config(3)
  source = data.load_digits(8)
  trainer = train.Trainer(config, train.make_mesh(jax.devices()[:1]),
                          source.images.shape[1:], len(source))
  dataset = data.train_dataset(source, batch_size=32, seed=0,
                               aug_config=config.aug)
  # The first step sets the averages to that step's losses; later steps
  # average with decay HEAD_LOSS_DECAY.
  batch = trainer.to_global({k: dataset[0][k] for k in ('view_a', 'view_b')})
  expected = jax.device_get(methods.loss(
      config, *[trainer.model.apply(
          {'params': trainer.state.params,
           'batch_stats': trainer.state.batch_stats}, batch[v], train=True,
          mutable=['batch_stats'])[0] for v in ('view_a', 'view_b')],
      progress=0.0)['head_losses'])
  metrics = trainer.step(dataset[0])
  first = np.asarray(jax.device_get(trainer.state.head_losses))
  # (Train-mode BatchNorm normalises with batch statistics, so the running
  # statistics the step passes from view a to view b do not matter.)
  np.testing.assert_allclose(first, expected, rtol=1e-5)
  assert metrics['selected_head'] == np.argmin(first)
  trainer.step(dataset[1])
  second = np.asarray(jax.device_get(trainer.state.head_losses))
  assert not np.allclose(second, first)
  # Whichever head has the lowest average predicts.
  source_eval = data.ArraySource(source.images[:64], source.labels[:64],
                                 10, 'digits')
  for best in range(3):
    losses = np.full(3, 5.0, np.float32)
    losses[best] = 1.0
    trainer.state = trainer.state.replace(
        head_losses=jax.device_put(jnp.asarray(losses), trainer.replicated))
    out = trainer.embed(source_eval)
    np.testing.assert_array_equal(out['c'], out['c_heads'][:, best])
  result = trainer.evaluate(source_eval)
  assert result['cluster_heads']['selected'] == best
  assert len(result['cluster_heads']['acc']) == 3
  agreement = result['cluster_heads']['agreement_nmi']
  partitions = [np.argmax(c, axis=1) for c in np.moveaxis(out['c_heads'], 1, 0)]
  np.testing.assert_allclose(agreement, metrics_lib.mean_agreement(partitions),
                             atol=1e-4)


def test_self_labeling_starts_from_the_selected_head():
  def head(value):
    return {'fc0': {'kernel': np.full((2, 2), value)}}
  variables = {
      'params': {'backbone': {'w': np.ones(3)}, 'instance_head': head(9.0),
                 'cluster_head': head(0.0), 'cluster_head_1': head(1.0),
                 'cluster_head_2': head(2.0)},
      'batch_stats': {'cluster_head': {'m': np.zeros(1)},
                      'cluster_head_1': {'m': np.ones(1)},
                      'cluster_head_2': {'m': np.full(1, 2.0)}}}
  kept = checkpoints._keep_selected_head(  # pylint: disable=protected-access
      variables, np.array([0.5, 0.7, 0.2]), 'run')
  assert set(kept['params']) == {'backbone', 'instance_head', 'cluster_head'}
  assert kept['params']['cluster_head']['fc0']['kernel'][0, 0] == 2.0
  assert kept['batch_stats'] == {'cluster_head': {'m': np.full(1, 2.0)}}
  assert kept['params']['instance_head']['fc0']['kernel'][0, 0] == 9.0


@pytest.mark.parametrize('method,layout,heads,message', [
    ('cdc', 'two', 0, 'must be >= 1'),
    ('cc', 'two', 2, 'needs method cdc'),
    ('selflabel', 'two', 2, 'needs method cdc'),
    ('cdc', 'shared', 2, "head_layout='two'"),
])
def test_bad_head_counts_are_refused(method, layout, heads, message):
  config = recipes.set_method(recipes.digits('tiny'), method,
                                    'tiny')
  config.model.head_layout = layout
  config.model.num_cluster_heads = heads
  with pytest.raises(config_validation.ConfigError,
                     match=f'model.num_cluster_heads.*{message}'):
    config_validation.validate(config, 1)


@pytest.mark.parametrize('heads,layout', [('cc', 'two'), ('cdc', 'shared')])
def test_model_refuses_several_heads_it_cannot_build(heads, layout):
  config = _config(2)
  config.model.head_layout = layout
  model = models.make_model(config.model, 10, heads)
  with pytest.raises(ValueError, match='num_cluster_heads=2'):
    model.init(jax.random.key(0), jnp.zeros((2, 8, 8, 1)), False)
