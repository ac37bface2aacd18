"""Data sources, augmentation and grain pipelines.

The training stream is a pure function of (seed, step): shuffling, batching and
augmentation are seeded per epoch and per batch index by grain, so it does not
depend on the number of devices, and a resumed run continues with exactly the
batches it would have seen (the stream is sliced at the resumed step).
"""

import dataclasses
from typing import Iterator

import grain
import numpy as np


@dataclasses.dataclass(frozen=True)
class ArraySource:
  """Images (N, H, W, C) float32 in [0, 1] with integer labels (N,)."""
  images: np.ndarray
  labels: np.ndarray
  num_classes: int
  name: str

  def __len__(self):
    return len(self.images)

  def __getitem__(self, index):
    return {'image': self.images[index], 'label': self.labels[index],
            'index': np.int64(index)}


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
  """Resizes (N, H, W, C) images to (N, size, size, C), align-corners=False."""
  n, h, w, c = images.shape
  if (h, w) == (size, size):
    return images
  ys = (np.arange(size) + 0.5) * h / size - 0.5
  xs = (np.arange(size) + 0.5) * w / size - 0.5
  yy, xx = np.meshgrid(ys, xs, indexing='ij')
  grid = np.broadcast_to(np.stack([yy, xx]), (n, 2, size, size))
  return _bilinear_sample(images, grid[:, 0], grid[:, 1], clamp=True)


def load_digits(image_size: int = 8) -> ArraySource:
  """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes)."""
  from sklearn.datasets import load_digits as sk_load_digits  # pylint: disable=g-import-not-at-top
  digits = sk_load_digits()
  images = (digits.images / 16.0).astype(np.float32)[..., None]
  images = resize_bilinear(images, image_size).astype(np.float32)
  return ArraySource(images=images, labels=digits.target.astype(np.int64),
                     num_classes=10, name='digits')


def load_source(data_config) -> ArraySource:
  if data_config.name == 'digits':
    return load_digits(data_config.image_size)
  raise ValueError(f"data.name={data_config.name!r}; allowed: 'digits'")


def _bilinear_sample(images, ys, xs, clamp=False):
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
  return _bilinear_sample(images, src_y, src_x)


def augment_digits(images: np.ndarray, rng: np.random.Generator,
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


def normalize(images: np.ndarray) -> np.ndarray:
  """Maps [0, 1] to [-1, 1]."""
  return (images * 2.0 - 1.0).astype(np.float32)


def _stack(elements):
  return {k: np.stack([e[k] for e in elements]) for k in elements[0]}


def train_dataset(source: ArraySource, *, batch_size: int, seed: int,
                  aug_config) -> grain.MapDataset:
  """Infinite MapDataset of global batches with two augmented views.

  Element `step` is the batch for training step `step`; a new shuffle every
  epoch; batches may span epoch boundaries, so every step is a full batch.
  """
  ds = grain.MapDataset.source(source).seed(seed).shuffle().repeat()
  ds = ds.batch(batch_size, drop_remainder=True, batch_fn=_stack)

  def two_views(batch, rng):
    return {'view_a': normalize(augment_digits(batch['image'], rng, aug_config)),
            'view_b': normalize(augment_digits(batch['image'], rng, aug_config)),
            'index': batch['index']}

  return ds.random_map(two_views)


def train_iterator(dataset: grain.MapDataset, start_step: int,
                   num_threads: int = 2, prefetch: int = 4) -> Iterator[dict]:
  """Iterates batches start_step, start_step + 1, ... with background prefetch."""
  options = grain.ReadOptions(num_threads=num_threads,
                              prefetch_buffer_size=prefetch)
  return iter(dataset[start_step:].to_iter_dataset(options))


def eval_batches(source: ArraySource, batch_size: int) -> Iterator[dict]:
  """Every image exactly once, no augmentation, in order. The last batch is
  padded to `batch_size` and `mask` marks the real examples."""
  n = len(source)
  for start in range(0, n, batch_size):
    stop = min(start + batch_size, n)
    pad = batch_size - (stop - start)
    images = normalize(source.images[start:stop])
    labels = source.labels[start:stop]
    mask = np.ones(stop - start, bool)
    if pad:
      images = np.concatenate([images, np.zeros((pad,) + images.shape[1:],
                                                images.dtype)])
      labels = np.concatenate([labels, np.zeros(pad, labels.dtype)])
      mask = np.concatenate([mask, np.zeros(pad, bool)])
    yield {'image': images, 'label': labels, 'mask': mask}
