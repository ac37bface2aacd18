"""SCAN's strong view: horizontal flip, RandAugment (4 operations per image,
each drawn uniformly from 14, each with a magnitude uniform in its range) and
Cutout (one square hole, side uniform in 1..side/2, filled with grey 0.5,
which data.normalize maps to 0 as SCAN's normalised-then-zeroed hole).

Operations and magnitude ranges follow SCAN's `augment_list` (PIL ops on
8-bit images); here they act on float images in [0, 1] without 8-bit
rounding except where the operation is defined on levels (posterize,
equalize). Geometric ones (rotate +-30 deg, shear +-0.1, translate +-10%)
use bilinear sampling with a black fill; their sign is random.
"""

import numpy as np

from cdcjax import image_ops

OPS = ('identity', 'autocontrast', 'equalize', 'rotate', 'solarize', 'color',
       'contrast', 'brightness', 'sharpness', 'shear_x', 'translate_x',
       'translate_y', 'posterize', 'shear_y')
# (low, high) of the magnitude, as SCAN's augment_list.
RANGES = {'identity': (0, 1), 'autocontrast': (0, 1), 'equalize': (0, 1),
          'rotate': (-30, 30), 'solarize': (0, 256), 'color': (0.05, 0.95),
          'contrast': (0.05, 0.95), 'brightness': (0.05, 0.95),
          'sharpness': (0.05, 0.95), 'shear_x': (-0.1, 0.1),
          'translate_x': (-0.1, 0.1), 'translate_y': (-0.1, 0.1),
          'posterize': (4, 8), 'shear_y': (-0.1, 0.1)}
NUM_OPS = 4


def _affine(x, matrix):
  """Samples each output pixel (y, x) at matrix @ (x, y, 1) of the input,
  as PIL's Image.transform(AFFINE); one 2x3 matrix per image."""
  n, h, w, _ = x.shape
  yy, xx = np.meshgrid(np.arange(h, dtype=np.float64),
                       np.arange(w, dtype=np.float64), indexing='ij')
  src_x = (matrix[:, 0, 0, None, None] * xx + matrix[:, 0, 1, None, None] * yy
           + matrix[:, 0, 2, None, None])
  src_y = (matrix[:, 1, 0, None, None] * xx + matrix[:, 1, 1, None, None] * yy
           + matrix[:, 1, 2, None, None])
  return image_ops.bilinear_sample(x, src_y, src_x)


def _blend(degenerate, x, factor):
  """PIL ImageEnhance: degenerate + factor * (x - degenerate), clipped."""
  return np.clip(degenerate + factor[:, None, None, None] * (x - degenerate),
                 0, 1)


def _equalize(x):
  """PIL's ImageOps.equalize per image and channel on 256 levels."""
  levels = np.clip(np.round(x * 255), 0, 255).astype(np.int64)
  out = np.empty_like(x)
  for i in range(x.shape[0]):
    for c in range(x.shape[-1]):
      hist = np.bincount(levels[i, ..., c].ravel(), minlength=256)
      nonzero = hist[hist > 0]
      step = (nonzero.sum() - nonzero[-1]) // 255
      if step == 0:
        out[i, ..., c] = x[i, ..., c]
        continue
      lut = (np.concatenate([[0], np.cumsum(hist)[:-1]]) + step // 2) // step
      out[i, ..., c] = np.clip(lut, 0, 255)[levels[i, ..., c]] / 255
  return out


def apply(op: str, x, v):
  """Operation `op` with magnitudes v (one per image) on images x."""
  n, h, w, _ = x.shape
  zeros, ones = np.zeros(n), np.ones(n)
  if op == 'identity':
    return x
  if op == 'autocontrast':  # Per channel, min..max stretched to 0..1.
    low = x.min(axis=(1, 2), keepdims=True)
    high = x.max(axis=(1, 2), keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    return np.where(high > low, (x - low) / span, x)
  if op == 'equalize':
    return _equalize(x)
  if op == 'rotate':  # Counter-clockwise by v degrees about the centre.
    t = np.deg2rad(v)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    cos, sin = np.cos(t), np.sin(t)
    matrix = np.stack([np.stack([cos, sin, cx - cos * cx - sin * cy], -1),
                       np.stack([-sin, cos, cy + sin * cx - cos * cy], -1)],
                      -2)
    return _affine(x, matrix)
  if op == 'solarize':  # PIL: levels >= threshold are inverted.
    return np.where(x * 255 >= v[:, None, None, None], 1.0 - x, x)
  if op == 'color':
    return _blend(image_ops.grayscale(x), x, v)
  if op == 'contrast':
    mean = image_ops.grayscale(x).mean(axis=(1, 2, 3), keepdims=True)
    return _blend(mean, x, v)
  if op == 'brightness':
    return _blend(np.zeros_like(x), x, v)
  if op == 'sharpness':  # Blend with PIL's SMOOTH filter; border unchanged.
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]]) / 13
    smooth = x.copy()
    smooth[:, 1:-1, 1:-1] = sum(
        kernel[a, b] * x[:, a:h - 2 + a, b:w - 2 + b]
        for a in range(3) for b in range(3))
    return _blend(smooth, x, v)
  if op in ('shear_x', 'shear_y', 'translate_x', 'translate_y'):
    rows = {'shear_x': (ones, v, zeros, zeros, ones, zeros),
            'shear_y': (ones, zeros, zeros, v, ones, zeros),
            'translate_x': (ones, zeros, v * w, zeros, ones, zeros),
            'translate_y': (ones, zeros, zeros, zeros, ones, v * h)}[op]
    return _affine(x, np.stack(rows, -1).reshape(n, 2, 3))
  if op == 'posterize':  # Keep the top int(v) bits of each 8-bit level.
    levels = np.clip(np.round(x * 255), 0, 255).astype(np.int64)
    shift = (8 - v.astype(np.int64))[:, None, None, None]
    return ((levels >> shift) << shift) / 255
  raise ValueError(f'unknown RandAugment op {op!r}; allowed: {OPS}')


def rand_augment(x, rng, num_ops: int = NUM_OPS):
  """num_ops operations per image, chosen with replacement, random
  magnitudes; geometric magnitudes get a random sign (SCAN's random_mirror)."""
  n = len(x)
  for _ in range(num_ops):
    choice = rng.integers(0, len(OPS), n)
    magnitude = rng.uniform(size=n)
    sign = np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)
    for k, op in enumerate(OPS):
      chosen = np.flatnonzero(choice == k)
      if not len(chosen):
        continue
      low, high = RANGES[op]
      v = low + magnitude[chosen] * (high - low)
      if op in ('rotate', 'shear_x', 'shear_y', 'translate_x', 'translate_y'):
        v = v * sign[chosen]
      x[chosen] = apply(op, x[chosen], v)
  return x


def cutout(x, rng, fill: float = 0.5):
  """One square hole per image, side uniform in 1..side/2, centred anywhere
  (clipped at the border), as SCAN's Cutout(n_holes=1, random=True)."""
  n, h, w, _ = x.shape
  length = rng.integers(1, h // 2 + 1, n)
  cy, cx = rng.integers(0, h, n), rng.integers(0, w, n)
  y0, y1 = np.clip(cy - length // 2, 0, h), np.clip(cy + length // 2, 0, h)
  x0, x1 = np.clip(cx - length // 2, 0, w), np.clip(cx + length // 2, 0, w)
  rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
  hole = ((rows >= y0[:, None, None]) & (rows < y1[:, None, None]) &
          (cols >= x0[:, None, None]) & (cols < x1[:, None, None]))
  return np.where(hole[..., None], fill, x)


def scan_strong(images, rng):
  x = np.array(images, np.float64)
  flip = rng.uniform(size=len(x)) < 0.5
  x = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
  x = rand_augment(x, rng)
  return cutout(x, rng).astype(np.float32)
