"""The colour steps of the contrastive recipes in JAX, for aug.color_on_device.

Same definitions as cdcjax/augment.py (colour jitter in a random order per
image, grayscale, Gaussian blur, solarize, each with the recipe's
probability), so the host and the accelerator paths draw from the same
distribution; tests/test_augment_jax.py checks the operations against the
NumPy ones and the output moments of the two paths. Images are (N, H, W, C)
in [0, 1]; every image gets its own random draws from `key`.
"""

import jax
import jax.numpy as jnp

from cdcjax import augment
from cdcjax import image_ops


grayscale = image_ops.grayscale


def adjust(x, op: int, factor):
  """op 0 brightness, 1 contrast, 2 saturation, 3 hue; one factor per image."""
  return augment._adjust(x, op, factor, xp=jnp)  # pylint: disable=protected-access


def color_jitter(x, key, brightness, contrast, saturation, hue):
  """torchvision's ColorJitter: factors uniform in [1 - x, 1 + x] (hue in
  [-hue, hue]), the four adjustments in a random order per image."""
  n = x.shape[0]
  k_factors, k_order = jax.random.split(key)
  low = jnp.array([1 - brightness, 1 - contrast, 1 - saturation, -hue])
  high = jnp.array([1 + brightness, 1 + contrast, 1 + saturation, hue])
  factors = jax.random.uniform(k_factors, (4, n), minval=low[:, None],
                               maxval=high[:, None])
  order = jnp.argsort(jax.random.uniform(k_order, (n, 4)), axis=1)
  for position in range(4):
    for op in range(4):
      chosen = (order[:, position] == op)[:, None, None, None]
      x = jnp.where(chosen, adjust(x, op, factors[op]), x)
  return x


def gaussian_blur(x, sigmas):
  """Separable Gaussian blur, per-image sigma, reflect padding."""
  radius = augment.blur_radius(min(x.shape[1:3]))
  offsets = jnp.arange(-radius, radius + 1)
  kernels = jnp.exp(-0.5 * (offsets[None] / sigmas[:, None]) ** 2)
  kernels = (kernels / kernels.sum(axis=1, keepdims=True))[:, :, None, None, None]
  for axis in (1, 2):
    pad = [(0, 0)] * 4
    pad[axis] = (radius, radius)
    padded = jnp.pad(x, pad, mode='reflect')
    size = x.shape[axis]
    x = sum(kernels[:, k] * jax.lax.slice_in_dim(padded, k, k + size,
                                                 axis=axis)
            for k in range(2 * radius + 1))
  return x


def colour(x, key, spec: augment.ViewSpec):
  """The colour steps of augment.colour, in JAX."""
  n = x.shape[0]
  keys = jax.random.split(key, 7)
  per_image = lambda k: jax.random.uniform(k, (n,))[:, None, None, None]
  if x.shape[-1] == 3:
    jittered = color_jitter(x, keys[0], *spec.jitter)
    x = jnp.where(per_image(keys[1]) < spec.jitter_prob, jittered, x)
    x = jnp.where(per_image(keys[2]) < spec.grey_prob, grayscale(x), x)
  if spec.blur_prob > 0:
    sigmas = (jax.random.uniform(keys[3], (n,), minval=0.1, maxval=2.0) *
              min(x.shape[1:3]) / 224)
    x = jnp.where(per_image(keys[4]) < spec.blur_prob,
                  gaussian_blur(x, sigmas), x)
  if spec.solarize_prob > 0:
    x = jnp.where(per_image(keys[5]) < spec.solarize_prob,
                  jnp.where(x >= 128 / 255, 1.0 - x, x), x)
  return x


def device_views(batch: dict, key, aug_config, weak_view_a: bool) -> dict:
  """Colours the host's geometry-only views (in [0, 1]) and maps them to
  [-1, 1] as data.normalize does; view a stays un-coloured when it is
  self-labeling's weak view."""
  out = dict(batch)
  for view, name in enumerate(('view_a', 'view_b')):
    x = batch[name]
    if not (weak_view_a and name == 'view_a'):
      x = colour(x, jax.random.fold_in(key, view),
                 augment.view_spec(aug_config, view))
    out[name] = x * 2.0 - 1.0
  return out
