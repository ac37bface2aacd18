"""model.cluster_head_input='cd_predictions': CDC's cluster heads read a
trained CD run's feature predictions; CD's backbone, instance projector and
feature predictor load from the run and stay frozen, only the cluster heads
train."""

import jax
import numpy as np
import pytest

from cdcjax import checkpoints
from cdcjax import config_validation
from cdcjax import recipes
from cdcjax import train
from tests.test_init_fresh import _save  # A state as a run's checkpoint.


def _trainer(config, seed):
  config.seed = seed
  config.batch_size = 16
  return train.Trainer(config, train.make_mesh(jax.devices()[:1]), (8, 8, 1),
                       64)


def _cd_config():
  return recipes.set_method(recipes.digits('tiny'), 'cd', 'tiny')


def _cdc_on_cd_config(init_from='/some/cd/run'):
  config = recipes.cdc_on_frozen_backbone(recipes.digits('tiny'),
                                                'tiny')
  config.model.cluster_head_input = 'cd_predictions'
  config.model.num_cluster_heads = 2
  config.init_from = init_from
  return config


def _batch(seed):
  rng = np.random.default_rng(seed)
  return {v: rng.uniform(size=(16, 8, 8, 1)).astype(np.float32)
          for v in ('view_a', 'view_b')}


def test_cluster_heads_read_the_loaded_cd_predictions_and_only_they_train(
    tmp_path):
  cd = _trainer(_cd_config(), 0)
  for step in range(2):  # Trained, so its BatchNorm statistics are not 0/1.
    cd.step(_batch(step))
  _save(tmp_path, cd.state)

  config = _cdc_on_cd_config(str(tmp_path))
  config_validation.validate(config, 1)
  cdc = _trainer(config, 1)
  # Nothing to skip: CD's modules all load; only the cluster heads are new.
  cdc.state = checkpoints.load_weights(str(tmp_path), cdc.state,
                                       tuple(config.init_fresh),
                                       tuple(config.init_skip))
  images = _batch(9)['view_a']
  cd_out = cd.model.apply({'params': cd.state.params,
                           'batch_stats': cd.state.batch_stats}, images,
                          train=False)
  before = jax.device_get(cdc.state)
  for train_mode in (False, True):
    out, _ = cdc.model.apply({'params': before.params,
                              'batch_stats': before.batch_stats}, images,
                             train=train_mode, mutable=['batch_stats'])
    # The CD run's own predictions, even in train mode (frozen: running
    # statistics), are what the cluster heads read.
    np.testing.assert_allclose(out['f'], cd_out['f'], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out['s'], cd_out['s'], rtol=1e-5, atol=1e-6)
    assert out['c_heads'].shape == (16, 2, 10)

  metrics = jax.device_get(cdc.step(_batch(5)))
  assert np.isfinite(metrics['loss'])
  after = jax.device_get(cdc.state)
  for name in ('backbone', 'instance_head', 'feature_predictor'):
    for collection in ('params', 'batch_stats'):
      jax.tree.map(np.testing.assert_array_equal,
                   getattr(after, collection)[name],
                   getattr(before, collection)[name])
  for name in ('cluster_head', 'cluster_head_1'):
    moved = jax.tree.leaves(jax.tree.map(
        lambda a, b: np.abs(a - b).max(), after.params[name],
        before.params[name]))
    assert max(moved) > 0, name


def test_the_gradient_stops_at_the_predictions():
  config = _cdc_on_cd_config()
  model = _trainer(config, 0).model
  variables = model.init(jax.random.key(0), _batch(0)['view_a'], False)

  def cluster_output(params):
    out, _ = model.apply({'params': params,
                          'batch_stats': variables['batch_stats']},
                         _batch(1)['view_a'], train=True,
                         mutable=['batch_stats'])
    return (out['c_heads'] ** 2).sum() + (out['s'] ** 2).sum()

  grads = jax.grad(cluster_output)(variables['params'])
  for name in ('backbone', 'instance_head', 'feature_predictor'):
    assert all(np.all(g == 0) for g in jax.tree.leaves(grads[name])), name
  assert any(np.any(g != 0) for g in jax.tree.leaves(grads['cluster_head']))


@pytest.mark.parametrize('change,message', [
    (dict(cluster_head_input='cd_prediction'), "one of .*'cd_predictions'"),
    (dict(init_from=''), 'set model.freeze_backbone=True and init_from'),
    (dict(freeze_backbone=False), 'set model.freeze_backbone=True'),
    (dict(init_skip=('feature_predictor',)),
     r"loads \['feature_predictor'\] from init_from"),
    (dict(init_fresh=('cluster_head', 'instance_head')),
     r"loads \['instance_head'\] from init_from"),
    (dict(method='cc', num_cluster_heads=1), 'needs method cdc'),
    (dict(head_layout='shared', num_cluster_heads=1), 'needs method cdc'),
])
def test_bad_settings_are_refused(change, message):
  config = _cdc_on_cd_config()
  config_validation.validate(config, 1)
  for key, value in change.items():
    if key == 'method':
      config.method = value
      config.evaluators = ('cluster_head',)
    elif key in ('init_from', 'init_skip', 'init_fresh'):
      config[key] = value
    else:
      config.model[key] = value
  with pytest.raises(config_validation.ConfigError,
                     match=r'model\.cluster_head_input.*' + message):
    config_validation.validate(config, 1)
