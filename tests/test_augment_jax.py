"""The accelerator colour path (aug.color_on_device) against the host path:
the same operations, and the same distribution of outputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cdcjax import augment
from cdcjax import augment_jax
from cdcjax import config_defaults
from cdcjax import recipes
from cdcjax import data
from cdcjax import train


def _images(n=8, size=10, seed=0):
  return np.random.default_rng(seed).uniform(size=(n, size, size, 3))


@pytest.mark.parametrize('op', [0, 1, 2, 3])
def test_each_colour_operation_matches_numpy(op):
  images = _images()
  factor = np.linspace(0.3, 1.7, 8) if op < 3 else np.linspace(-0.4, 0.4, 8)
  np.testing.assert_allclose(
      augment_jax.adjust(jnp.asarray(images, jnp.float32), op,
                         jnp.asarray(factor, jnp.float32)),
      augment._adjust(images, op, factor), atol=2e-5)


def test_blur_matches_numpy():
  images = _images(n=3, size=40)
  sigmas = np.array([0.1, 0.2, 0.357])  # Up to 2.0 px at 224, scaled to 40.
  np.testing.assert_allclose(
      augment_jax.gaussian_blur(jnp.asarray(images, jnp.float32),
                                jnp.asarray(sigmas, jnp.float32)),
      augment.gaussian_blur(images, sigmas), atol=1e-5)


def _per_draw_statistics(x, num_images=16):
  """For each draw of each source image and channel: the mean, the std, and
  the fractions of values in ten bins, over the pixels."""
  x = np.asarray(x, np.float64).reshape(-1, num_images, *x.shape[1:])
  hist = [((x >= lo) & (x < lo + 0.1)).mean(axis=(2, 3))
          for lo in np.arange(0, 1, 0.1)]
  return np.stack([x.mean(axis=(2, 3)), x.std(axis=(2, 3)), *hist], -1)


def _max_z(a, b):
  """Largest two-sample z-score between the mean statistics of a and b."""
  sa, sb = _per_draw_statistics(a), _per_draw_statistics(b)
  se = np.sqrt(sa.var(0) / len(sa) + sb.var(0) / len(sb))
  return np.max(np.abs(sa.mean(0) - sb.mean(0)) / np.maximum(se, 1e-4))


def _draws(recipe, view, draws=500):
  aug = config_defaults.base_config().aug
  aug.recipe = recipe
  images = np.tile(_images(n=16, size=12, seed=1), (draws, 1, 1, 1))
  return images, augment.view_spec(aug, view)


@pytest.mark.parametrize('recipe,view', [('simclr', 0), ('moco_v3', 0),
                                         ('moco_v3', 1), ('moco_v2', 0)])
def test_host_and_device_paths_draw_from_the_same_distribution(recipe, view):
  images, spec = _draws(recipe, view)
  host = augment.colour(images, np.random.default_rng(0), spec)
  device = jax.jit(augment_jax.colour, static_argnums=2)(
      jnp.asarray(images, jnp.float32), jax.random.key(0), spec)
  # 16 images x 3 channels x 12 statistics = 576 z-scores: 5 is ~p 3e-4 under
  # the null hypothesis after the multiple comparisons.
  assert _max_z(host, device) < 5


@pytest.mark.parametrize('recipe,view', [('simclr', 0), ('moco_v3', 1)])
def test_host_pil_views_and_device_colour_draw_from_the_same_distribution(
    recipe, view):
  """The host's 8-bit PIL pipeline (images larger than 64 x 64) against the
  host geometry followed by the device colour steps."""
  images, spec = _draws(recipe, view)
  host = augment.pil_view(images, np.random.default_rng(0), spec)
  geometry = augment.geometry(images, np.random.default_rng(1), spec)
  device = jax.jit(augment_jax.colour, static_argnums=2)(
      jnp.asarray(geometry, jnp.float32), jax.random.key(0), spec)
  # 16 images x 3 channels x 12 statistics = 576 z-scores: 5 is ~p 3e-4 under
  # the null hypothesis after the multiple comparisons.
  assert _max_z(host, device) < 5


def test_the_comparison_tells_different_recipes_apart():
  """The test above has power: MoCo v3's two views (blur p 1.0 vs 0.1,
  solarize p 0 vs 0.2) and SimCLR at s = 0.5 vs 0.4 are told apart."""
  images, v0 = _draws('moco_v3', 0)
  _, v1 = _draws('moco_v3', 1)
  rng = np.random.default_rng(0)
  assert _max_z(augment.colour(images, rng, v0),
                augment.colour(images, rng, v1)) > 5
  weaker = augment.ViewSpec(jitter=(0.32, 0.32, 0.32, 0.08))
  stronger = augment.ViewSpec(jitter=(0.4, 0.4, 0.4, 0.1))
  assert _max_z(augment.colour(images, rng, weaker),
                augment.colour(images, rng, stronger)) > 5


@pytest.mark.slow
def test_device_views_on_1_and_8_devices_agree():
  config = recipes.cifar10('tiny')
  config.aug.color_on_device = True
  config.batch_size = 16
  rng = np.random.default_rng(0)
  batch = {'view_a': rng.uniform(size=(16, 16, 16, 3)).astype(np.float32),
           'view_b': rng.uniform(size=(16, 16, 16, 3)).astype(np.float32)}
  results = []
  for n in (1, 8):
    mesh = train.make_mesh(jax.devices()[:n])
    trainer = train.Trainer(config, mesh, (16, 16, 3), 64)
    metrics = jax.device_get(trainer.step(batch))
    results.append((metrics, jax.device_get(trainer.state.params)))
  assert np.isfinite(results[0][0]['loss'])
  np.testing.assert_allclose(results[0][0]['loss'], results[1][0]['loss'],
                             rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4,
                                                       atol=1e-6),
               results[0][1], results[1][1])


def test_host_pipeline_leaves_views_unnormalised_for_the_device():
  source = data.ArraySource(
      (np.random.default_rng(0).uniform(size=(40, 8, 8, 3)) * 255
       ).astype(np.uint8), np.zeros(40, np.int64), 1, 'fake')
  aug = recipes.cifar10().aug
  aug.color_on_device = True
  batch = data.train_dataset(source, batch_size=8, seed=0, aug_config=aug)[0]
  assert batch['view_a'].min() >= 0 and batch['view_b'].min() >= 0
