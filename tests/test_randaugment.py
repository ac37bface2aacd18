"""SCAN's strong view: each RandAugment operation against PIL (the library
SCAN's recipe calls), on 8-bit images, and the Cutout hole."""

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from cdcjax import config_defaults
from cdcjax import randaugment
from cdcjax import augment


def _uint8_images(n=3, size=16, seed=0):
  rng = np.random.default_rng(seed)
  # Smooth-ish content with a limited range, so autocontrast has work to do.
  base = rng.integers(40, 200, (n, 1, 1, 3))
  noise = rng.integers(-30, 30, (n, size, size, 3))
  return np.clip(base + noise, 0, 255).astype(np.uint8)


PIL_OPS = {
    'autocontrast': lambda im, v: ImageOps.autocontrast(im),
    'equalize': lambda im, v: ImageOps.equalize(im),
    'solarize': lambda im, v: ImageOps.solarize(im, v),
    'posterize': lambda im, v: ImageOps.posterize(im, int(v)),
    'color': lambda im, v: ImageEnhance.Color(im).enhance(v),
    'contrast': lambda im, v: ImageEnhance.Contrast(im).enhance(v),
    'brightness': lambda im, v: ImageEnhance.Brightness(im).enhance(v),
    'sharpness': lambda im, v: ImageEnhance.Sharpness(im).enhance(v),
    'translate_x': lambda im, v: im.transform(
        im.size, Image.AFFINE, (1, 0, v * im.size[0], 0, 1, 0)),
    'translate_y': lambda im, v: im.transform(
        im.size, Image.AFFINE, (1, 0, 0, 0, 1, v * im.size[1])),
}
MAGNITUDES = {'solarize': 100.0, 'posterize': 5.0, 'color': 0.3,
              'contrast': 0.4, 'brightness': 0.7, 'sharpness': 0.2,
              'translate_x': 2 / 16, 'translate_y': -3 / 16,
              'autocontrast': 0.0, 'equalize': 0.0}


@pytest.mark.parametrize('op', sorted(PIL_OPS))
def test_operation_matches_pil(op):
  images = _uint8_images()
  v = MAGNITUDES[op]
  ours = randaugment.apply(op, images / 255.0, np.full(len(images), v))
  theirs = np.stack([np.asarray(PIL_OPS[op](Image.fromarray(im), v))
                     for im in images]) / 255.0
  # PIL rounds to 8 bits (and the contrast mean to a whole level).
  np.testing.assert_allclose(ours, theirs, atol=2.5 / 255)


def test_every_operation_keeps_shape_and_range():
  x = _uint8_images() / 255.0
  for op in randaugment.OPS:
    low, high = randaugment.RANGES[op]
    out = randaugment.apply(op, x.copy(), np.full(len(x), (low + high) / 2))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1, op


def test_cutout_hole_sizes_and_fill():
  x = np.ones((2000, 32, 32, 3))
  out = randaugment.cutout(x, np.random.default_rng(0))
  holes = (out[..., 0] == 0.5).sum(axis=(1, 2))
  assert set(np.unique(out)) <= {0.5, 1.0}
  assert holes.max() <= 16 * 16 and (holes == 0).mean() < 0.2


def test_scan_strong_via_the_recipe_name():
  aug = config_defaults.base_config().aug
  aug.recipe = 'scan_strong'
  images = _uint8_images(n=64) / 255.0
  out = augment.augment(images, np.random.default_rng(1), aug)
  assert out.shape == images.shape and out.dtype == np.float32
  assert not np.allclose(out, images)
