"""Data sources, augmentation and grain pipelines.

The training stream is a pure function of (seed, step): shuffling, batching and
augmentation are seeded per epoch and per batch index by grain, so it does not
depend on the number of devices, and a resumed run continues with exactly the
batches it would have seen (the stream is sliced at the resumed step).
"""

import dataclasses
import io
import os
from typing import Iterator

import grain
import numpy as np

from cdcjax import augment
from cdcjax import folders
from cdcjax import image_ops

# Datasets read from `<name>.npz` files (the format of ../shared/datasets/).
NPZ_DATASETS = ('mnist', 'usps', 'cifar10')
DATASETS = ('digits', *NPZ_DATASETS, 'npz', 'folder', 'tfds')
SPLITS = ('train', 'test', 'all')
DATA_DIR_ENV = 'CDCJAX_DATA_DIR'
GREY_DATASETS = ('digits', 'mnist', 'usps')
CLASS_NAMES = {
    'mnist': tuple(str(d) for d in range(10)),
    'usps': tuple(str(d) for d in range(10)),
    'cifar10': ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
                'frog', 'horse', 'ship', 'truck'),
}


def input_shape(config) -> tuple[int, int, int]:
  """(H, W, C) of the images the network sees, from the config alone (no
  data read): the crop size or the dataset's image size, and one channel
  for the greyscale datasets, three for the others."""
  side = config.aug.output_size or config.data.image_size
  return (side, side, 1 if config.data.name in GREY_DATASETS else 3)


@dataclasses.dataclass(frozen=True)
class ArraySource:
  """Images (N, H, W, C), uint8 or float32 in [0, 1], with labels (N,).

  Items are float32 in [0, 1]: uint8 storage keeps large sets (CIFAR-10 is
  180 MB as uint8, 740 MB as float32) small in memory.
  """
  images: np.ndarray
  labels: np.ndarray  # folders.UNLABELLED (-1) everywhere when unlabelled.
  num_classes: int  # 0: unlabelled.
  name: str
  paths: tuple[str, ...] | None = None  # Image files (folder sources).
  class_names: tuple[str, ...] | None = None  # None: the label numbers.

  def __len__(self):
    return len(self.images)

  def read(self, indices) -> np.ndarray:
    """Float images in [0, 1] at `indices` (the interface every source has)."""
    return to_float(self.images[indices])

  def __getitem__(self, index):
    return {'image': to_float(self.images[index]),
            'label': self.labels[index], 'index': np.int64(index)}


def to_float(images: np.ndarray) -> np.ndarray:
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 255.0
  return images.astype(np.float32)


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
  """Resizes (N, H, W, C) images to (N, size, size, C), align-corners=False."""
  n, h, w, c = images.shape
  if (h, w) == (size, size):
    return images
  ys = (np.arange(size) + 0.5) * h / size - 0.5
  xs = (np.arange(size) + 0.5) * w / size - 0.5
  yy, xx = np.meshgrid(ys, xs, indexing='ij')
  grid = np.broadcast_to(np.stack([yy, xx]), (n, 2, size, size))
  return image_ops.bilinear_sample(images, grid[:, 0], grid[:, 1],
                                 clamp=True)


def pad_border(images: np.ndarray, pad: int) -> np.ndarray:
  """Adds `pad` pixels of zeros (black) on each side of (N, H, W, C) images;
  a negative `pad` removes -pad pixels from each side instead.

  USPS and scikit-learn's digits fill their frame (the strokes touch the top
  and bottom rows), so random shifts, scalings and rotations cut strokes off:
  a zero whose top is cut is a U. A black border gives them MNIST's framing.
  MNIST's digits sit in a 20x20 box inside 28x28: trimming its empty border
  before resizing gives the digit more of the resized image's pixels.
  """
  if pad == 0:
    return images
  if pad > 0:
    return np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  height, width = images.shape[1:3]
  if 2 * -pad > min(height, width) - 4:
    raise ValueError(
        f'pad={pad} would trim {height}x{width} images to '
        f'{height + 2 * pad}x{width + 2 * pad}; allowed: a trim that leaves at '
        'least 4x4 pixels')
  return images[:, -pad:height + pad, -pad:width + pad]


def load_digits(image_size: int = 8, pad: int = 0) -> ArraySource:
  """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), with
  `pad` black pixels added on each side before resizing to image_size."""
  from sklearn.datasets import load_digits as sk_load_digits  # pylint: disable=g-import-not-at-top
  digits = sk_load_digits()
  images = (digits.images / 16.0).astype(np.float32)[..., None]
  images = pad_border(images, pad)
  images = resize_bilinear(images, image_size).astype(np.float32)
  return ArraySource(images=images, labels=digits.target.astype(np.int64),
                     num_classes=10, name='digits',
                     class_names=tuple(str(d) for d in range(10)))


def npz_path(data_config) -> str:
  """Where the .npz file of `data_config` is: data.path if set, else
  $CDCJAX_DATA_DIR/<name>.npz."""
  if data_config.path:
    return data_config.path
  root = os.environ.get(DATA_DIR_ENV)
  if not root:
    raise FileNotFoundError(
        f'data.name={data_config.name!r} needs its .npz file: set '
        f'--config.data.path=FILE or {DATA_DIR_ENV}=DIR (holding '
        f'{data_config.name}.npz)')
  return os.path.join(root, f'{data_config.name}.npz')


def load_npz(path: str, split: str = 'all', image_size: int | None = None,
             name: str | None = None, pad: int = 0) -> ArraySource:
  """Reads the shared .npz format: `labels`, optional `split` (0 train, 1 test)
  and `classes`, and images as uint8 `images` (N, H, W, C) or as `jpeg` bytes
  with `offsets` (decoded to RGB). `pad` black pixels are added on each side
  (pad_border) before resizing to image_size."""
  if split not in SPLITS:
    raise ValueError(f'split={split!r}; allowed: {SPLITS}')
  if not os.path.exists(path):
    raise FileNotFoundError(f'data file {path} does not exist')
  with np.load(path, allow_pickle=False) as archive:
    labels = archive['labels'].astype(np.int64)
    keep = np.ones(len(labels), bool)
    if split != 'all':
      if 'split' not in archive:
        raise ValueError(f'{path} has no `split` array; use split=all')
      keep = archive['split'] == (0 if split == 'train' else 1)
    if 'images' in archive:
      images = archive['images'][keep]
    elif 'jpeg' in archive:
      images = _decode_jpeg(archive['jpeg'], archive['offsets'],
                            np.flatnonzero(keep))
    else:
      raise ValueError(f'{path} holds neither `images` nor `jpeg`+`offsets`')
    num_classes = (len(archive['classes']) if 'classes' in archive
                   else int(labels.max()) + 1)
  if images.ndim == 3:
    images = images[..., None]
  images = pad_border(images, pad)
  if image_size and images.shape[1:3] != (image_size, image_size):
    images = np.round(255 * resize_bilinear(to_float(images), image_size))
    images = np.clip(images, 0, 255).astype(np.uint8)
  name = name or os.path.splitext(os.path.basename(path))[0]
  return ArraySource(images=images, labels=labels[keep],
                     num_classes=num_classes, name=f'{name}:{split}',
                     class_names=CLASS_NAMES.get(name))


def _decode_jpeg(data: np.ndarray, offsets: np.ndarray, indices) -> np.ndarray:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  return np.stack([
      np.asarray(Image.open(io.BytesIO(
          data[offsets[i]:offsets[i + 1]].tobytes())).convert('RGB'))
      for i in indices])


def load_source(data_config, split: str = 'all'):
  """The `split` ('train', 'test' or 'all'; a tfds split string for tfds) of
  the dataset data.name: an ArraySource or a tfds_source.TfdsSource; with
  data.balance_classes, cut to its smallest class's count."""
  source = _load_source(data_config, split)
  return (balance_classes(source) if data_config.get('balance_classes')
          else source)


# The subsample of balance_classes is a property of the data, not of a run:
# one fixed seed, so every training seed sees the same images.
BALANCE_SEED = 0


def balance_classes(source: ArraySource) -> ArraySource:
  """`source` with every class cut to the smallest class's count (a seeded
  random subset of each class, in the original order)."""
  if not source.num_classes or np.any(source.labels < 0):
    raise ValueError(f'data.balance_classes: {source.name} is not labelled '
                     'everywhere; allowed: labelled sources only')
  classes, counts = np.unique(source.labels, return_counts=True)
  rng = np.random.default_rng(BALANCE_SEED)
  keep = np.sort(np.concatenate([
      rng.choice(np.flatnonzero(source.labels == k), counts.min(),
                 replace=False) for k in classes]))
  return dataclasses.replace(
      source, images=source.images[keep], labels=source.labels[keep],
      name=f'{source.name} (balanced: {counts.min()} per class)',
      paths=(None if source.paths is None
             else tuple(source.paths[i] for i in keep)))


def _load_source(data_config, split: str):
  if data_config.name == 'digits':
    if split != 'all':
      raise ValueError(f"digits has no {split!r} split; use 'all'")
    return load_digits(data_config.image_size, data_config.pad)
  if data_config.name == 'folder':
    if split != 'all':
      raise ValueError(f"an image folder has no {split!r} split; use 'all'")
    images, labels, classes, paths = folders.load_folder(
        data_config.path, data_config.image_size)
    return ArraySource(images=images, labels=labels, num_classes=len(classes),
                       name=f'folder:{os.path.basename(data_config.path)}',
                       paths=tuple(paths), class_names=tuple(classes))
  if data_config.name == 'tfds':
    from cdcjax import tfds_source  # pylint: disable=g-import-not-at-top
    return tfds_source.TfdsSource(
        data_config.tfds_name, split, image_size=data_config.image_size,
        label_key=data_config.tfds_label, data_dir=data_config.tfds_dir,
        class_list=data_config.class_list)
  if data_config.name in NPZ_DATASETS or data_config.name == 'npz':
    return load_npz(npz_path(data_config), split, data_config.image_size,
                    data_config.name, data_config.pad)
  raise ValueError(f'data.name={data_config.name!r}; allowed: {DATASETS}')


def normalize(images: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
  """Maps [0, 1] to [-1, 1] as float32; out=images works in place (the train
  views: on 224-pixel batches copies cost as much as the augmentation)."""
  out = np.multiply(images, np.float32(2), out=out, dtype=np.float32)
  out -= np.float32(1)
  return out


def _stack(elements):
  return {k: np.stack([e[k] for e in elements]) for k in elements[0]}


def train_dataset(source, *, batch_size: int, seed: int, aug_config,
                  weak_view_a: bool = False, process_index: int = 0,
                  process_count: int = 1) -> grain.MapDataset:
  """Infinite MapDataset of this process's part of each global batch, with
  two augmented views.

  Element `step` is the batch for training step `step`: the global batch is
  a slice of a per-epoch shuffle of all indices (batches may span epoch
  boundaries, so every step is full), and process p reads and augments only
  rows [p * B / P, (p + 1) * B / P) of it.
  weak_view_a: view a is the un-augmented image (self-labeling's weak view).
  With aug_config.color_on_device the views are geometry only, in [0, 1];
  the train step colours and normalises them (cdcjax/augment_jax.py).
  """
  if batch_size % process_count:
    raise ValueError(f'batch_size={batch_size} is not divisible by the '
                     f'process count {process_count}')
  per_process = batch_size // process_count
  mine = slice(process_index * per_process, (process_index + 1) * per_process)
  ds = grain.MapDataset.range(len(source)).seed(seed).shuffle().repeat()
  ds = ds.batch(batch_size, drop_remainder=True)
  ds = ds.map(lambda indices: _stack([source[int(i)] for i in indices[mine]]))

  def finish(view):  # Each view is a new float32 array: normalise in place.
    view = np.asarray(view, np.float32)
    return view if aug_config.color_on_device else normalize(view, out=view)

  def two_views(batch, rng):
    images = batch['image']
    view_a = (np.array(images, np.float32) if weak_view_a else
              augment.augment(images, rng, aug_config, view=0))
    return {'view_a': finish(view_a),
            'view_b': finish(augment.augment(images, rng, aug_config, view=1)),
            'index': batch['index']}

  return ds.random_map(two_views)


def train_iterator(dataset: grain.MapDataset, start_step: int = 0,
                   num_threads: int = 2,
                   prefetch: int = 4) -> grain.DatasetIterator:
  """Iterates batches start_step, start_step + 1, ... with background prefetch.
  The iterator's state (get_state / set_state) is what checkpoints save."""
  options = grain.ReadOptions(num_threads=num_threads,
                              prefetch_buffer_size=prefetch)
  return iter(dataset[start_step:].to_iter_dataset(options))


def eval_batches(source, batch_size: int, process_index: int = 0,
                 process_count: int = 1) -> Iterator[dict]:
  """Every image exactly once, no augmentation, in order, in global batches
  of `batch_size`; the last one is padded. Process p reads only its rows of
  each batch ('image', 'index'); 'mask' marks the real examples of the whole
  global batch, so every process can select them from gathered outputs."""
  if batch_size % process_count:
    raise ValueError(f'eval batch size {batch_size} is not divisible by the '
                     f'process count {process_count}')
  per_process = batch_size // process_count
  n = len(source)
  for start in range(0, n, batch_size):
    positions = start + np.arange(batch_size)
    mask = positions < n
    mine = positions[process_index * per_process:
                     (process_index + 1) * per_process]
    real = mine[mine < n]
    images = normalize(source.read(real)) if len(real) else None
    pad = len(mine) - len(real)
    if pad:
      shape = source.read([0]).shape[1:] if images is None else images.shape[1:]
      padding = np.zeros((pad,) + shape, np.float32)
      images = padding if images is None else np.concatenate([images, padding])
    yield {'image': images, 'index': mine, 'mask': mask}
