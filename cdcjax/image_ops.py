"""Image primitives shared by the augmentation recipes and the data sources
(NumPy, float images (N, H, W, C))."""

import numpy as np


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


def grayscale(x):
  """ITU-R 601 luma, as torchvision's rgb_to_grayscale; shape (N, H, W, 1)."""
  return x[..., :1] * 0.299 + x[..., 1:2] * 0.587 + x[..., 2:3] * 0.114
