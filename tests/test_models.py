import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cdcjax import models


def _num_params(module, shape):
  variables = jax.eval_shape(
      lambda x: module.init(jax.random.key(0), x, False), jnp.zeros(shape))
  return sum(np.prod(x.shape) for x in jax.tree.leaves(variables['params']))


# torchvision parameter counts minus the final fc (weights + bias).
@pytest.mark.parametrize('name,expected', [
    ('resnet18', 11_689_512 - 513_000),
    ('resnet34', 21_797_672 - 513_000),
    ('resnet50', 25_557_032 - 2_049_000),
])
def test_parameter_counts_match_torchvision(name, expected):
  assert _num_params(models.make_backbone(name), (1, 64, 64, 3)) == expected


@pytest.mark.slow
def test_imagenet_stem_shapes_and_symmetric_padding():
  net = models.make_backbone('resnet18', width=0.125)
  x = jax.random.normal(jax.random.key(0), (1, 224, 224, 3))
  variables = net.init(jax.random.key(1), x, False)
  _, state = net.apply(variables, x, False, capture_intermediates=True,
                       mutable=['intermediates'])
  inter = state['intermediates']
  assert inter['layer1_1']['__call__'][0].shape[1:3] == (56, 56)
  assert inter['layer4_1']['__call__'][0].shape[1:3] == (7, 7)
  # The stride-2 3x3 conv must pad 1 pixel on every side, as torch does;
  # Flax 'SAME' pads (0, 1) for even inputs and shifts every feature.
  block_input = inter['layer1_1']['__call__'][0]
  kernel = variables['params']['layer2_0']['conv1']['kernel']
  conv = lambda padding: jax.lax.conv_general_dilated(
      block_input, kernel, (2, 2), padding,
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  got = inter['layer2_0']['conv1']['__call__'][0]
  np.testing.assert_allclose(got, conv(((1, 1), (1, 1))), rtol=1e-5, atol=1e-5)
  assert not np.allclose(got, conv('SAME'), atol=1e-3)


def test_small_stem_keeps_resolution_and_width_multiplier():
  net = models.make_backbone('resnet18', width=0.25, stem='small')
  variables = net.init(jax.random.key(0), jnp.zeros((2, 8, 8, 1)), False)
  assert variables['params']['conv1']['kernel'].shape == (3, 3, 1, 16)
  out = net.apply(variables, jnp.zeros((2, 8, 8, 1)), False)
  assert out.shape == (2, 128)


@pytest.mark.slow
def test_bottleneck_has_stride_on_3x3_conv():
  net = models.make_backbone('resnet50', width=0.125)
  x = jnp.zeros((1, 64, 64, 3))
  variables = net.init(jax.random.key(0), x, False)
  _, state = net.apply(variables, x, False, capture_intermediates=True,
                       mutable=['intermediates'])
  block = state['intermediates']['layer2_0']
  assert block['conv1']['__call__'][0].shape[1:3] == (16, 16)  # 1x1, stride 1
  assert block['conv2']['__call__'][0].shape[1:3] == (8, 8)  # 3x3, stride 2


@pytest.mark.parametrize('layout', ['two', 'shared'])
def test_clustering_model_outputs(layout):
  model = models.ClusteringModel(
      backbone=models.make_backbone('resnet18', 0.125, 'small'),
      num_clusters=10, instance_dim=16, head_hidden_dims=(32,),
      head_layout=layout)
  x = jnp.zeros((4, 8, 8, 1))
  variables = model.init(jax.random.key(0), x, False)
  out = model.apply(variables, x, False)
  assert out['c'].shape == (4, 10) and out['s'].shape == (4, 16)
  heads = {'two': {'cluster_head', 'instance_head'}, 'shared': {'head'}}[layout]
  assert heads <= set(variables['params'])


def test_bad_names_are_rejected():
  with pytest.raises(ValueError, match='model.backbone'):
    models.make_backbone('resnet19')
  with pytest.raises(ValueError, match='stem'):
    models.make_backbone('resnet18', stem='big').init(
        jax.random.key(0), jnp.zeros((1, 8, 8, 1)), False)


@pytest.mark.parametrize('heads,keys', [
    ('cc', {'c': 10, 's': 16}), ('cd', {'f': 24, 's': 16}),
    ('instance', {'s': 16})])
def test_peer_heads(heads, keys):
  model = models.ClusteringModel(
      backbone=models.make_backbone('resnet10', 0.125, 'small'),
      num_clusters=10, instance_dim=16, head_hidden_dims=(32,), heads=heads,
      num_features=24)
  x = jax.random.normal(jax.random.key(0), (6, 8, 8, 1))
  variables = model.init(jax.random.key(0), x, False)
  out, _ = model.apply(variables, x, True, mutable=['batch_stats'])
  assert set(out) == set(keys) | {'features'}
  for key, dim in keys.items():
    assert out[key].shape == (6, dim)
  if heads == 'cd':  # Sigmoid predictions from a predictor ending in BN.
    assert (out['f'] > 0).all() and (out['f'] < 1).all()
    assert 'bn1' in variables['batch_stats']['feature_predictor']
  if heads == 'cc':  # No BatchNorm in CC's heads.
    assert 'instance_head' not in variables.get('batch_stats', {})


def _batch_norm_pair(groups):
  x = jax.random.normal(jax.random.key(0), (16, 3, 3, 5)) * 2 + 1
  ours = models.BatchNorm(use_running_average=False, groups=groups)
  variables = ours.init(jax.random.key(1), x)
  variables = {'params': {'scale': jnp.arange(1., 6.), 'bias': jnp.ones(5)},
               'batch_stats': variables['batch_stats']}
  y, stats = ours.apply(variables, x, mutable=['batch_stats'])
  return x, variables, y, stats['batch_stats']


def test_batch_norm_matches_flax_when_synchronised():
  x, variables, y, stats = _batch_norm_pair(groups=1)
  flax_bn = models.nn.BatchNorm(use_running_average=False, momentum=0.9,
                                epsilon=1e-5)
  y_ref, stats_ref = flax_bn.apply(variables, x, mutable=['batch_stats'])
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
               stats, stats_ref['batch_stats'])
  frozen = models.BatchNorm(use_running_average=True)
  eval_vars = {'params': variables['params'], 'batch_stats': stats}
  np.testing.assert_allclose(
      frozen.apply(eval_vars, x),
      models.nn.BatchNorm(use_running_average=True, epsilon=1e-5).apply(
          eval_vars, x), rtol=1e-5, atol=1e-5)


def test_per_device_batch_norm_normalises_each_slice():
  x, variables, y, stats = _batch_norm_pair(groups=4)
  x, y = np.asarray(x, np.float64), np.asarray(y)
  scale = np.arange(1., 6.)
  means, variances = [], []
  for g in range(4):
    part = x[4 * g:4 * (g + 1)]
    mean, var = part.mean((0, 1, 2)), part.var((0, 1, 2))
    means.append(mean)
    variances.append(var)
    np.testing.assert_allclose(
        y[4 * g:4 * (g + 1)], (part - mean) / np.sqrt(var + 1e-5) * scale + 1,
        rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(stats['mean'], 0.1 * np.mean(means, 0),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(stats['var'], 0.9 + 0.1 * np.mean(variances, 0),
                             rtol=1e-5)


def test_momentum_heads_follow_moco_v3s_update():
  """One step with loss.contrast='moco_v3': the momentum copy becomes
  m * ema + (1 - m) * params (the parameters before the step), with MoCo
  v3's m at step 0; a frozen backbone's copy stays equal to it."""
  from cdcjax import methods, recipes, train  # pylint: disable=g-import-not-at-top,g-multiple-import
  config = recipes.set_method(recipes.digits('tiny'), 'cdc',
                                    'tiny')
  config.loss.contrast = 'moco_v3'
  config.loss.momentum = 0.9
  config.model.freeze_backbone = True
  config.batch_size = 16
  trainer = train.Trainer(config, train.make_mesh(jax.devices()[:1]),
                          (8, 8, 1), 64)
  before = jax.device_get(trainer.state)
  assert 'predictor' in before.params
  # Make the heads' copy differ from the parameters, so the update shows.
  ema = {k: jax.tree.map(lambda p: p + 0.1, v) if k != 'backbone'
         else jax.tree.map(jnp.copy, v)
         for k, v in trainer.state.params.items()}
  trainer.state = trainer.state.replace(ema_params=ema)
  ema_before = jax.device_get(trainer.state.ema_params)
  rng = np.random.default_rng(0)
  batch = {v: rng.normal(size=(16, 8, 8, 1)).astype(np.float32)
           for v in ('view_a', 'view_b')}
  metrics = jax.device_get(trainer.step(batch))
  after = jax.device_get(trainer.state)
  m = float(methods.momentum(config, 0.0))
  assert m == pytest.approx(0.9)
  jax.tree.map(lambda e, e0, p0: np.testing.assert_allclose(
      e, m * e0 + (1 - m) * p0, rtol=1e-5, atol=1e-6),
               after.ema_params, ema_before, before.params)
  assert np.isfinite(metrics['loss'])
  jax.tree.map(np.testing.assert_array_equal, after.params['backbone'],
               before.params['backbone'])
  assert float(methods.momentum(config, 1.0)) == pytest.approx(1.0)
