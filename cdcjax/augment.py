"""Batched NumPy augmentation recipes, run on the host inside grain workers.

Every function takes float images (N, H, W, C) in [0, 1] and a NumPy
Generator, and draws independent parameters per image.

  digits  affine jitter, stroke intensity and contrast, random erasing, noise
          (small grey digits; the config's aug.* fields).
  simclr  SimCLR's recipe without blur, as the CDC and CC papers use it on
          CIFAR: RandomResizedCrop(scale aug.crop_scale, ratio 3/4..4/3),
          horizontal flip p 0.5, ColorJitter(0.8 s, 0.8 s, 0.8 s, 0.2 s) with
          p 0.8 in random order, grayscale p 0.2 (s = aug.color_strength).
"""

import numpy as np

RECIPES = ('digits', 'simclr')


def bilinear_sample(images, ys, xs, clamp=False):
  """Samples images (N, H, W, C) at float coordinates ys, xs (N, h, w);
  points outside the image read 0 unless clamp."""
  n, h, w, _ = images.shape
  y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
  wy, wx = (ys - y0)[..., None], (xs - x0)[..., None]
  batch = np.arange(n)[:, None, None]

  def read(y, x):
    if clamp:
      return images[batch, np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)]
    inside = ((y >= 0) & (y < h) & (x >= 0) & (x < w))[..., None]
    return np.where(inside, images[batch, np.clip(y, 0, h - 1),
                                   np.clip(x, 0, w - 1)], 0.0)

  return ((1 - wy) * (1 - wx) * read(y0, x0) + (1 - wy) * wx * read(y0, x0 + 1)
          + wy * (1 - wx) * read(y0 + 1, x0) + wy * wx * read(y0 + 1, x0 + 1))


def random_affine(images, rng, *, max_rotation_deg, scale_range, max_shear_deg,
                  max_translate):
  """Random rotation, scale, shear and translation (fraction of the side),
  bilinear, zero fill, one independent transform per image."""
  n, h, w, _ = images.shape
  theta = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, n))
  shear = np.deg2rad(rng.uniform(-max_shear_deg, max_shear_deg, n))
  scale = rng.uniform(scale_range[0], scale_range[1], n)
  ty = rng.uniform(-max_translate, max_translate, n) * h
  tx = rng.uniform(-max_translate, max_translate, n) * w
  # Forward map A = R(theta) @ Shear @ scale; sample the input at A^-1 (p - t).
  cos, sin, tan = np.cos(theta), np.sin(theta), np.tan(shear)
  a = np.stack([np.stack([cos, -sin + cos * tan], -1),
                np.stack([sin, cos + sin * tan], -1)], -2) * scale[:, None, None]
  inv = np.linalg.inv(a)
  cy, cx = (h - 1) / 2, (w - 1) / 2
  yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing='ij')
  py, px = yy[None] - ty[:, None, None], xx[None] - tx[:, None, None]
  src_y = inv[:, 0, 0, None, None] * py + inv[:, 0, 1, None, None] * px + cy
  src_x = inv[:, 1, 0, None, None] * py + inv[:, 1, 1, None, None] * px + cx
  return bilinear_sample(images, src_y, src_x)


def digits(images: np.ndarray, rng: np.random.Generator,
           aug_config) -> np.ndarray:
  """Augmentation for small grey digits: affine jitter, stroke intensity and
  contrast changes, random erasing of a square, additive noise."""
  n, h, w, _ = images.shape
  x = random_affine(images, rng, max_rotation_deg=aug_config.rotation_deg,
                    scale_range=aug_config.scale_range,
                    max_shear_deg=aug_config.shear_deg,
                    max_translate=aug_config.translate)
  gain = rng.uniform(*aug_config.intensity_range, (n, 1, 1, 1))
  gamma = np.exp(rng.uniform(-aug_config.log_gamma, aug_config.log_gamma,
                             (n, 1, 1, 1)))
  x = np.clip(x, 0.0, 1.0) ** gamma * gain
  if aug_config.erase_prob > 0:
    side = max(1, int(round(aug_config.erase_fraction * h)))
    top = rng.integers(0, h - side + 1, n)
    left = rng.integers(0, w - side + 1, n)
    rows, cols = np.arange(h)[None, :], np.arange(w)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)
    erase = in_rows[:, :, None] & in_cols[:, None, :]
    erase &= (rng.uniform(size=n) < aug_config.erase_prob)[:, None, None]
    x = np.where(erase[..., None], 0.0, x)
  x = x + rng.normal(0.0, aug_config.noise_std, x.shape)
  return x.astype(np.float32)


def random_resized_crop(images, rng, scale=(0.08, 1.0),
                        ratio=(3 / 4, 4 / 3), attempts=10):
  """torchvision's RandomResizedCrop to the input size: area fraction in
  `scale`, log-uniform aspect ratio; after `attempts` misses, a central crop
  with the ratio clamped to `ratio` (torchvision's fallback)."""
  n, h, w, _ = images.shape
  area = h * w
  target = rng.uniform(scale[0], scale[1], (attempts, n)) * area
  aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]),
                              (attempts, n)))
  cw = np.round(np.sqrt(target * aspect))
  ch = np.round(np.sqrt(target / aspect))
  ok = (cw > 0) & (ch > 0) & (cw <= w) & (ch <= h)
  first = np.argmax(ok, axis=0)
  found = ok[first, np.arange(n)]
  cw, ch = cw[first, np.arange(n)], ch[first, np.arange(n)]
  # Fallback: the whole image, cropped to the allowed aspect ratio.
  in_ratio = w / h
  fb_w = np.where(in_ratio < ratio[0], w, np.where(
      in_ratio > ratio[1], np.round(h * ratio[1]), w))
  fb_h = np.where(in_ratio < ratio[0], np.round(w / ratio[0]), h)
  cw, ch = np.where(found, cw, fb_w), np.where(found, ch, fb_h)
  top = np.where(found, np.floor(rng.uniform(size=n) * (h - ch + 1)),
                 (h - ch) // 2)
  left = np.where(found, np.floor(rng.uniform(size=n) * (w - cw + 1)),
                  (w - cw) // 2)
  # Output pixel centres mapped into the crop (align_corners=False).
  u = (np.arange(h) + 0.5) / h
  v = (np.arange(w) + 0.5) / w
  ys = top[:, None, None] + u[None, :, None] * ch[:, None, None] - 0.5
  xs = left[:, None, None] + v[None, None, :] * cw[:, None, None] - 0.5
  ys = np.broadcast_to(ys, (n, h, w))
  xs = np.broadcast_to(xs, (n, h, w))
  return bilinear_sample(images, ys, xs, clamp=True)


def _grayscale(x):
  """ITU-R 601 luma, as torchvision's rgb_to_grayscale; shape (N, H, W, 1)."""
  return x[..., :1] * 0.299 + x[..., 1:2] * 0.587 + x[..., 2:3] * 0.114


def _rgb_to_hsv(x):
  r, g, b = x[..., 0], x[..., 1], x[..., 2]
  maxc, minc = x.max(-1), x.min(-1)
  delta = maxc - minc
  safe = np.where(delta > 0, delta, 1.0)
  rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
  hue = np.where(maxc == r, bc - gc,
                 np.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
  hue = np.where(delta > 0, (hue / 6.0) % 1.0, 0.0)
  sat = np.where(maxc > 0, delta / np.where(maxc > 0, maxc, 1.0), 0.0)
  return hue, sat, maxc


def _hsv_to_rgb(hue, sat, val):
  i = np.floor(hue * 6.0)
  f = hue * 6.0 - i
  p, q, t = val * (1 - sat), val * (1 - sat * f), val * (1 - sat * (1 - f))
  i = i.astype(np.int64) % 6
  choices = [np.stack(c, -1) for c in ((val, t, p), (q, val, p), (p, val, t),
                                        (p, q, val), (t, p, val), (val, p, q))]
  out = choices[0]
  for k in range(1, 6):
    out = np.where((i == k)[..., None], choices[k], out)
  return out


def _adjust(x, op, factor):
  f = factor[:, None, None, None]
  if op == 0:  # Brightness.
    return np.clip(x * f, 0, 1)
  if op == 1:  # Contrast: blend with the mean grey level of each image.
    mean = _grayscale(x).mean(axis=(1, 2, 3), keepdims=True)
    return np.clip(mean + f * (x - mean), 0, 1)
  if op == 2:  # Saturation: blend with the grey image.
    grey = _grayscale(x)
    return np.clip(grey + f * (x - grey), 0, 1)
  hue, sat, val = _rgb_to_hsv(x)  # Hue: rotate by factor (a turn fraction).
  return _hsv_to_rgb((hue + factor[:, None, None]) % 1.0, sat, val)


def color_jitter(images, rng, brightness, contrast, saturation, hue):
  """torchvision's ColorJitter: each image gets the four adjustments in its
  own random order, factors uniform in [1 - x, 1 + x] (hue: [-hue, hue])."""
  n = len(images)
  factors = np.stack([rng.uniform(1 - brightness, 1 + brightness, n),
                      rng.uniform(1 - contrast, 1 + contrast, n),
                      rng.uniform(1 - saturation, 1 + saturation, n),
                      rng.uniform(-hue, hue, n)])
  order = np.argsort(rng.uniform(size=(n, 4)), axis=1)
  x = images.copy()
  for position in range(4):
    for op in range(4):
      chosen = np.flatnonzero(order[:, position] == op)
      if len(chosen):
        x[chosen] = _adjust(x[chosen], op, factors[op, chosen])
  return x


def simclr(images: np.ndarray, rng: np.random.Generator,
           aug_config) -> np.ndarray:
  """SimCLR's augmentation without blur (see the module docstring)."""
  n = len(images)
  x = random_resized_crop(images, rng, scale=tuple(aug_config.crop_scale))
  flip = rng.uniform(size=n) < 0.5
  x = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
  if x.shape[-1] == 3:
    s = aug_config.color_strength
    jitter = np.flatnonzero(rng.uniform(size=n) < 0.8)
    x[jitter] = color_jitter(x[jitter], rng, 0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)
    grey = rng.uniform(size=n) < 0.2
    x = np.where(grey[:, None, None, None], _grayscale(x), x)
  return x.astype(np.float32)


def augment(images: np.ndarray, rng: np.random.Generator,
            aug_config) -> np.ndarray:
  """Applies the recipe named by aug_config.recipe."""
  if aug_config.recipe == 'digits':
    return digits(images, rng, aug_config)
  if aug_config.recipe == 'simclr':
    return simclr(images, rng, aug_config)
  raise ValueError(f'aug.recipe={aug_config.recipe!r}; allowed: {RECIPES}')
