"""Input-pipeline throughput: cdcjax's grain pipeline against a PyTorch
DataLoader with torchvision transforms doing the same recipe, in one run.

  python -m cdcjax.bench input --sizes=32,224 --workers=1,2

Both read CIFAR-10's training images from the shared .npz (uint8 in memory)
and produce batches of 256 images with two augmented views each: at 32
pixels the SimCLR recipe of the CIFAR configs (RandomResizedCrop, flip,
ColorJitter(0.4, 0.4, 0.4, 0.1) p 0.8, grayscale p 0.2); at 224 the CC
variant (the crop resized to 224 x 224). cdcjax uses `workers` grain threads;
PyTorch uses `workers` DataLoader worker processes. Reported: source images
per second (each with its two views) and the ratio cdcjax / PyTorch.
torch and torchvision are optional (`pip install torch==2.14.1
torchvision==0.29.1`); without them only cdcjax's numbers are printed, and
the summary says the reference is missing.
"""

import time

import numpy as np

from cdcjax import config_common
from cdcjax import data as data_lib

BATCH = 256


def _aug_config(size: int):
  aug = config_common.cifar10().aug  # simclr, s = 0.5, area (0.08, 1).
  if size != 32:
    aug.recipe = 'cc'
    aug.output_size = size
  return aug


def _rate(iterator, warmup: int, batches: int) -> float:
  for _ in range(warmup):
    next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * BATCH / (time.perf_counter() - start)


def cdcjax_rate(source, size: int, workers: int, warmup: int,
                batches: int) -> float:
  dataset = data_lib.train_dataset(source, batch_size=BATCH, seed=0,
                                   aug_config=_aug_config(size))
  iterator = data_lib.train_iterator(dataset, num_threads=workers,
                                     prefetch=2 * workers)
  return _rate(iterator, warmup, batches)


def torch_rate(images: np.ndarray, size: int, workers: int, warmup: int,
               batches: int) -> float:
  import torch  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from torchvision import transforms  # pylint: disable=g-import-not-at-top

  view = transforms.Compose([
      transforms.RandomResizedCrop(size),
      transforms.RandomHorizontalFlip(),
      transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)],
                             p=0.8),
      transforms.RandomGrayscale(p=0.2),
      transforms.ToTensor(),
      transforms.Normalize((0.5,) * 3, (0.5,) * 3),
  ])

  class TwoViews(torch.utils.data.Dataset):

    def __len__(self):
      return len(images)

    def __getitem__(self, i):
      image = Image.fromarray(images[i])
      return view(image), view(image)

  loader = torch.utils.data.DataLoader(
      TwoViews(), batch_size=BATCH, shuffle=True, num_workers=workers,
      drop_last=True, persistent_workers=workers > 0)
  return _rate(iter(loader), warmup, batches)


def bench_input(sizes, workers, warmup: int = 2, batches: int = 10) -> dict:
  config = config_common.cifar10()
  source = data_lib.load_source(config.data, 'train')
  try:
    import torchvision  # pylint: disable=g-import-not-at-top,unused-import
    have_torch = True
  except ImportError:
    have_torch = False
    print('torch/torchvision not installed: no PyTorch reference '
          '(pip install torch==2.14.1 torchvision==0.29.1)', flush=True)
  rows = []
  print('| size | workers | cdcjax img/s | PyTorch img/s | ratio |')
  print('|---|---|---|---|---|', flush=True)
  for size in sizes:
    for w in workers:
      ours = cdcjax_rate(source, size, w, warmup, batches)
      theirs = (torch_rate(source.images, size, w, warmup, batches)
                if have_torch else None)
      row = {'size': size, 'workers': w, 'cdcjax': ours, 'torch': theirs,
             'ratio': ours / theirs if theirs else None}
      rows.append(row)
      print(f'| {size} | {w} | {ours:.0f} | '
            f'{f"{theirs:.0f}" if theirs else "-"} | '
            f'{f"{row["ratio"]:.2f}" if theirs else "-"} |', flush=True)
  return {'rows': rows, 'batch': BATCH, 'batches': batches,
          'torch_reference': have_torch}
