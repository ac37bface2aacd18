"""Input-pipeline throughput: cdcjax's grain pipeline against a PyTorch
DataLoader with torchvision transforms doing the same recipe, in one run.

  python -m cdcjax.bench input --sizes=32,224 --workers=1,2

Both read CIFAR-10's training images from the shared .npz (uint8 in memory)
and produce batches of 256 images with two augmented views each: at 32
pixels the SimCLR recipe of the CIFAR configs (RandomResizedCrop, flip,
ColorJitter(0.4, 0.4, 0.4, 0.1) p 0.8, grayscale p 0.2); at 224 the CC
variant (the crop resized to 224 x 224). cdcjax uses `workers` grain threads;
PyTorch uses `workers` DataLoader worker processes. Reported: source images
per second (each with its two views) and the ratio cdcjax / PyTorch, for
cdcjax's two modes: every step on the host, and aug.color_on_device (the host
does decoding and geometry; the colour steps then run in the jitted train
step on the accelerator, whose time is not part of this number).
torch and torchvision are optional (`pip install torch==2.14.1
torchvision==0.29.1`); without them only cdcjax's numbers are printed, and
the summary says the reference is missing.
"""

import importlib.util
import time

import numpy as np

from cdcjax import recipes
from cdcjax import data as data_lib

BATCH = 256


def _aug_config(size: int, color_on_device: bool = False):
  aug = recipes.cifar10().aug  # simclr, s = 0.5, area (0.08, 1).
  if size != 32:
    aug.recipe = 'cc'
    aug.output_size = size
  aug.color_on_device = color_on_device
  return aug


def _rate(iterator, warmup: int, batches: int) -> float:
  for _ in range(warmup):
    next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * BATCH / (time.perf_counter() - start)


def cdcjax_rate(source, size: int, workers: int, warmup: int,
                batches: int, color_on_device: bool = False) -> float:
  dataset = data_lib.train_dataset(
      source, batch_size=BATCH, seed=0,
      aug_config=_aug_config(size, color_on_device))
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
  config = recipes.cifar10()
  source = data_lib.load_source(config.data, 'train')
  have_torch = importlib.util.find_spec('torchvision') is not None
  if not have_torch:
    print('torch/torchvision not installed: no PyTorch reference '
          '(pip install torch==2.14.1 torchvision==0.29.1)', flush=True)
  rows = []
  print('| size | workers | PyTorch img/s | cdcjax, all on host: img/s (ratio) '
        '| cdcjax, colour on device: host img/s (ratio) |')
  print('|---|---|---|---|---|', flush=True)
  ratio = lambda a, b: f'{a:.0f} ({a / b:.2f})' if b else f'{a:.0f} (-)'
  for size in sizes:
    for w in workers:
      theirs = (torch_rate(source.images, size, w, warmup, batches)
                if have_torch else None)
      host = cdcjax_rate(source, size, w, warmup, batches)
      device = cdcjax_rate(source, size, w, warmup, batches,
                           color_on_device=True)
      rows.append({'size': size, 'workers': w, 'torch': theirs,
                   'cdcjax_host': host, 'cdcjax_colour_on_device': device})
      print(f'| {size} | {w} | {f"{theirs:.0f}" if theirs else "-"} | '
            f'{ratio(host, theirs)} | {ratio(device, theirs)} |', flush=True)
  return {'rows': rows, 'batch': BATCH, 'batches': batches,
          'torch_reference': have_torch}
