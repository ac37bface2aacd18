"""Augmentation recipes: identities at zero strength, references, statistics."""

import colorsys

import numpy as np
import pytest

from cdcjax import augment
from cdcjax import config_defaults
from cdcjax import config_validation
from cdcjax import image_ops


def _images(n=16, size=12, channels=3, seed=0):
  return np.random.default_rng(seed).uniform(
      size=(n, size, size, channels)).astype(np.float32)


def test_full_square_crop_is_identity():
  images = _images()
  out = augment.random_resized_crop(images, np.random.default_rng(0),
                                    scale=(1.0, 1.0), ratio=(1.0, 1.0))
  np.testing.assert_allclose(out, images, atol=1e-6)


def test_crop_area_follows_scale():
  # A horizontal ramp: the crop's width shows as the spread of its values.
  size = 64
  ramp = np.broadcast_to(np.arange(size, dtype=np.float32)[None, None, :, None],
                         (2000, size, size, 1))
  out = augment.random_resized_crop(ramp, np.random.default_rng(1),
                                    scale=(0.25, 0.25), ratio=(1.0, 1.0))
  widths = out[:, 0, -1, 0] - out[:, 0, 0, 0] + 1  # ~ crop width in pixels.
  np.testing.assert_allclose(widths, size / 2, atol=1.0)


def test_pil_resample_enlarging_is_bilinear_with_edge_clamp():
  images = _images(n=5, size=9)
  rng = np.random.default_rng(7)
  top, left = rng.uniform(0, 3, 5), rng.uniform(0, 3, 5)
  height, width = rng.uniform(3, 6, 5), rng.uniform(3, 6, 5)
  out = augment.pil_resample(images, top, left, height, width, 20, 17)
  # Output pixel centres mapped into each box (align_corners=False).
  ys = top[:, None] + (np.arange(20) + 0.5)[None] / 20 * height[:, None] - 0.5
  xs = left[:, None] + (np.arange(17) + 0.5)[None] / 17 * width[:, None] - 0.5
  grid_y = np.broadcast_to(ys[:, :, None], (5, 20, 17))
  grid_x = np.broadcast_to(xs[:, None, :], (5, 20, 17))
  expected = image_ops.bilinear_sample(images, grid_y, grid_x, clamp=True)
  np.testing.assert_allclose(out, expected, atol=1e-5)


def test_pil_resample_shrinking_is_antialiased():
  # A 1-pixel checkerboard shrunk 4x: antialiasing averages it to 0.5
  # (plain bilinear would alias to runs of 0s and 1s).
  board = (np.indices((32, 32)).sum(0) % 2).astype(np.float32)[None, :, :, None]
  out = augment.resize(board, 8)
  np.testing.assert_allclose(out[:, 1:-1, 1:-1], 0.5, atol=0.02)


def test_hsv_round_trip_matches_colorsys():
  pixels = np.random.default_rng(2).uniform(size=(200, 3))
  hue, sat, val = augment._rgb_to_hsv(pixels)
  expected = np.array([colorsys.rgb_to_hsv(*p) for p in pixels])
  np.testing.assert_allclose(np.stack([hue, sat, val], -1), expected,
                             atol=1e-9)
  np.testing.assert_allclose(augment._hsv_to_rgb(hue, sat, val), pixels,
                             atol=1e-9)


def test_color_jitter_zero_strength_is_identity():
  images = _images()
  out = augment.color_jitter(images, np.random.default_rng(3), 0, 0, 0, 0)
  np.testing.assert_allclose(out, images, atol=1e-6)


def test_brightness_only_scales_each_image_by_one_factor():
  images = _images(n=64) * 0.5 + 0.1  # No clipping at factor <= 1.4.
  out = augment.color_jitter(images, np.random.default_rng(4), 0.4, 0, 0, 0)
  ratio = out / images
  per_image = ratio.reshape(64, -1)
  np.testing.assert_allclose(per_image, np.broadcast_to(per_image[:, :1],
                                                    per_image.shape), rtol=1e-5)
  assert per_image.min() >= 0.6 - 1e-6 and per_image.max() <= 1.4 + 1e-6


def test_pil_jitter_follows_the_float_jitter_within_8_bit_rounding():
  # Smooth images (a colour gradient), so the 8-bit hue channel is not noisy.
  ramp = np.linspace(0.05, 0.95, 24, dtype=np.float32)
  base = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :],
                                      0.5 * ramp[:, None] + 0.3), -1)
  images = np.repeat(base[None], 32, 0) * np.linspace(
      0.6, 1.0, 32, dtype=np.float32)[:, None, None, None]
  exact = augment.color_jitter(images, np.random.default_rng(9), 0.4, 0.4,
                               0.4, 0.1, use_pil=False)
  pil = augment.color_jitter(images, np.random.default_rng(9), 0.4, 0.4, 0.4,
                             0.1, use_pil=True)
  difference = np.abs(pil - exact)
  assert difference.mean() < 2.5 / 255, difference.mean()
  assert np.quantile(difference, 0.99) < 8 / 255


def test_saturation_zero_is_grayscale_reference():
  images = _images(n=4)
  grey = augment._adjust(images, 2, np.zeros(4))
  luma = images @ np.array([0.299, 0.587, 0.114])
  np.testing.assert_allclose(grey, np.repeat(luma[..., None], 3, -1),
                             atol=1e-6)


def _simclr_config(**kw):
  c = config_defaults.base_config().aug
  c.recipe = 'simclr'
  c.update(kw)
  return c


def test_simclr_grayscale_rate_and_range():
  images = _images(n=4000, size=4)
  out = augment.augment(images, np.random.default_rng(5), _simclr_config())
  assert out.shape == images.shape and out.dtype == np.float32
  assert out.min() >= 0 and out.max() <= 1
  grey = np.all(np.abs(out - out[..., :1]) < 1e-6, axis=(1, 2, 3))
  assert abs(grey.mean() - 0.2) < 0.03  # RandomGrayscale(p=0.2).


def test_simclr_on_grey_images_only_crops_and_flips():
  images = _images(n=8, channels=1)
  config = _simclr_config(crop_scale=(1.0, 1.0))
  out = augment.augment(images, np.random.default_rng(6), config)
  for x, y in zip(out, images):
    assert (np.allclose(x, y, atol=1e-6) or
            np.allclose(x, y[:, ::-1], atol=1e-6))


def test_augment_dispatch_and_unknown_recipe():
  images = _images(n=4, channels=1)
  c = config_defaults.base_config().aug
  out = augment.augment(images, np.random.default_rng(0), c)
  assert out.shape == images.shape
  c.recipe = 'randaugment'
  with pytest.raises(ValueError, match="aug.recipe='randaugment'"):
    augment.augment(images, np.random.default_rng(0), c)


@pytest.mark.parametrize('field,value', [('recipe', 'moco'),
                                         ('crop_scale', (0.5, 0.2)),
                                         ('color_strength', -1.0),
                                         ('blur_prob', 1.5),
                                         ('output_size', -1)])
def test_config_rejects_bad_aug(field, value):
  c = config_defaults.base_config()
  c.aug[field] = value
  with pytest.raises(config_validation.ConfigError, match=f'aug.{field}'):
    config_validation.validate(c, 1)


def test_blur_preserves_constants_and_mass_and_matches_a_direct_convolution():
  const = np.full((2, 20, 20, 3), 0.3)
  np.testing.assert_allclose(augment.gaussian_blur(const, np.array([0.5, 2.0])),
                             const, atol=1e-12)
  images = _images(n=2, size=20)
  sigmas = np.array([0.7, 1.5])
  out = augment.gaussian_blur(images, sigmas)
  radius = augment.blur_radius(20)
  offsets = np.arange(-radius, radius + 1)
  for n in range(2):  # Direct 2-D sum with reflect indices.
    g = np.exp(-0.5 * (offsets / sigmas[n]) ** 2)
    g /= g.sum()
    reflect = lambda i: np.abs(i) if i < 0 else (38 - i if i > 19 else i)
    y, x = 7, 0
    want = sum(g[a] * g[b] * images[n, reflect(y + dy), reflect(x + dx)]
               for a, dy in enumerate(offsets) for b, dx in enumerate(offsets))
    np.testing.assert_allclose(out[n, y, x], want, rtol=1e-6)
  assert out.std() < images.std()  # Smoothing lowers the variance.


def test_solarize_inverts_only_bright_values():
  x = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
  np.testing.assert_allclose(augment.solarize(x), [0.0, 0.25, 0.5, 0.25, 0.0])


def _aug(recipe, **kw):
  c = config_defaults.base_config().aug
  c.recipe = recipe
  c.update(kw)
  return c


def test_recipe_parameters():
  assert augment.view_spec(_aug('moco_v2'), 0) == augment.ViewSpec(
      crop_scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.1), blur_prob=0.5)
  v3 = [augment.view_spec(_aug('moco_v3'), v) for v in (0, 1)]
  assert [(v.blur_prob, v.solarize_prob) for v in v3] == [(1.0, 0.0),
                                                          (0.1, 0.2)]
  assert v3[0].jitter == (0.4, 0.4, 0.2, 0.1)
  cc = augment.view_spec(_aug('cc', color_strength=1.0, crop_scale=(0.5, 1)), 1)
  assert cc.jitter == (0.4, 0.4, 0.4, 0.1) and cc.crop_scale == (0.08, 1.0)
  assert cc.blur_prob == 0


def test_colour_applies_each_step_with_its_probability(monkeypatch):
  # A marker instead of the blur: blurred images are the ones that moved by 10.
  monkeypatch.setattr(augment, 'gaussian_blur', lambda x, sigmas: x + 10)
  images = np.full((4000, 4, 4, 3), 0.9)
  spec = augment.ViewSpec(jitter_prob=0.0, grey_prob=0.0, blur_prob=0.3,
                          solarize_prob=0.2)
  out = augment.colour(images, np.random.default_rng(0), spec)[:, 0, 0, 0]
  # 0.9 untouched, 10.9 blurred, 0.1 solarized, -9.9 blurred then solarized.
  assert np.all(np.isclose(out[:, None], [0.9, 10.9, 0.1, -9.9]).any(axis=1))
  blurred, solarized = np.abs(out) > 5, out < 0.5
  assert abs(blurred.mean() - 0.3) < 0.03
  assert abs(solarized.mean() - 0.2) < 0.03


def test_output_size_resizes_crops_and_eval_resize():
  images = _images(n=4, size=8)
  out = augment.augment(images, np.random.default_rng(0),
                        _aug('cc', output_size=24))
  assert out.shape == (4, 24, 24, 3)
  up = augment.resize(np.full((1, 8, 8, 1), 0.4), 24)
  np.testing.assert_allclose(up, 0.4, atol=1e-6)
  np.testing.assert_allclose(augment.resize(images, 8), images, atol=1e-6)


def test_color_on_device_leaves_only_geometry_on_the_host():
  images = _images(n=6, size=8)
  c = _aug('simclr', crop_scale=(1.0, 1.0), color_on_device=True)
  out = augment.augment(images, np.random.default_rng(1), c)
  for x, y in zip(out, images):  # No colour change: crop (identity) + flip.
    assert (np.allclose(x, y, atol=1e-6) or
            np.allclose(x, y[:, ::-1], atol=1e-6))
