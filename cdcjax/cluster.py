r"""Clusters a folder of your own images.

  python -m cdcjax.cluster IMAGE_FOLDER --num_clusters=K --out=DIR \
      [--backbone=CONVERTED_DIR] [--config.x=...]

Picks a recipe from the folder: CDC from scratch at 16, 32, 64 or 96 pixels (the
largest not above the images' median shorter side), or, with --backbone (the
output of python -m cdcjax.convert), CDC's heads on that frozen ResNet-50 at
224 pixels. Trains with progress and ETA, then writes into DIR:
assignments.csv (path, cluster, confidence), by_cluster/cluster_K.txt (each
cluster's files, most confident first) and report/index.html. Rerunning the
same command resumes. `--config.<field>=<value>` overrides any field of the
chosen recipe (the recipe is printed). Every bad input is refused in one line
before any training: a missing or empty folder, no readable image, K < 2 or
more clusters than images, an --out that holds something else.
"""

import csv
import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
import numpy as np
from ml_collections import config_flags

from cdcjax import cli
from cdcjax import config_defaults
from cdcjax import config_validation
from cdcjax import recipes
from cdcjax import folders
from cdcjax import train
from cdcjax.errors import TrainingFailure

SIDES = (16, 32, 64, 96)  # From-scratch input sizes.
BACKBONE_SIDE = 224
OWN_FILES = ('config.json', 'metrics.jsonl', 'checkpoints', 'tensorboard',
             'report', 'assignments.csv', 'by_cluster')


class InputError(ValueError):
  """A bad argument, found before any training."""


def inspect_folder(root: str) -> tuple[list[str], list[int], int]:
  """(readable image files, their shorter sides, unreadable file count),
  from the image headers (cheap: nothing is decoded)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if not os.path.isdir(root):
    raise InputError(f'{root!r} is not a directory')
  paths = folders.list_images(root)
  if not paths:
    raise InputError(f'{root!r} holds no image file (looked recursively for '
                     f'{", ".join(folders.IMAGE_EXTENSIONS)})')
  readable, sides, unreadable = [], [], 0
  for path in paths:
    try:
      with Image.open(path) as image:
        sides.append(min(image.size))
      readable.append(path)
    except Exception:  # pylint: disable=broad-except
      unreadable += 1  # PIL raises several types; any means: skip it.
  if not readable:
    raise InputError(f'{root!r}: none of its {len(paths)} image files could '
                     'be read')
  return readable, sides, unreadable


def check_out(out: str, folder: str) -> None:
  """--out must be new, empty, or a cdcjax run (resumed when its config
  matches: workdir.check_workdir_config says so otherwise)."""
  out_abs, folder_abs = os.path.abspath(out), os.path.abspath(folder)
  if os.path.commonpath([out_abs, folder_abs]) == folder_abs:
    raise InputError(f'--out={out!r} is inside the image folder {folder!r}; '
                     'its figures would be read as images next time')
  if os.path.exists(out_abs) and not os.path.isdir(out_abs):
    raise InputError(f'--out={out!r} is a file, not a directory')
  if os.path.isdir(out_abs):
    entries = set(os.listdir(out_abs))
    if entries and 'config.json' not in entries:
      raise InputError(f'--out={out!r} is not empty and holds no cdcjax run '
                       f'(it has {", ".join(sorted(entries)[:3])}); give a new '
                       'or empty directory')


def choose_side(sides: list[int]) -> int:
  median = float(np.median(sides))
  return max([s for s in SIDES if s <= median], default=SIDES[0])


def recipe(folder: str, num_clusters: int, num_images: int, side: int,
           backbone: str = '') -> ml_collections.ConfigDict:
  """The config cdcjax.cluster trains with (before --config overrides)."""
  c = recipes.set_method(recipes.folder(), 'cdc')
  c.data.path = os.path.abspath(folder)
  c.num_clusters = num_clusters
  c.evaluators = ('cluster_head', 'kmeans_features')
  c.batch_size = int(2 ** np.floor(np.log2(min(256, max(8, num_images)))))
  c.eval_batch_size = 256
  c.aug.recipe = 'simclr'
  c.aug.crop_scale = (0.2, 1.0)
  if backbone:
    # The ImageNet recipe's heads (configs/imagenet100_cdc.py) on the
    # user's converted ResNet-50, frozen.
    c.init_from = os.path.abspath(backbone)
    c.init_fresh = ('cluster_head',)
    c.data.image_size = BACKBONE_SIDE
    c.aug.recipe = 'moco_v2'
    c.model.backbone = 'resnet50'
    c.model.stem = 'imagenet'
    c.model.freeze_backbone = True
    c.model.head_hidden_dims = (2048,)
    c.model.instance_dim = 256
    c.optimizer.name = 'sgd'
    c.optimizer.learning_rate = 0.03 * c.batch_size / 256
    c.optimizer.weight_decay = 1e-4
    epochs = 50
  else:
    c.data.image_size = side
    recipes.small_cpu_model(c)
    c.model.stem = 'small' if side <= 32 else 'imagenet'
    c.batch_size = min(c.batch_size, 128)
    c.loss.equipartition_warmup_fraction = 0.7
    epochs = 200
  steps_per_epoch = max(1, num_images // c.batch_size)
  c.total_steps = int(np.clip(epochs * steps_per_epoch, 300, 20000))
  c.log_every_steps = max(1, c.total_steps // 20)
  c.checkpoint_every_steps = max(1, c.total_steps // 5)
  return c


def _overridden_fields(argv) -> list[str]:
  return [a[len('--config.'):].split('=', 1)[0] for a in argv
          if a.startswith('--config.')]


def _get(config, dotted: str):
  for part in dotted.split('.'):
    config = config[part]
  return config


def _set(config, dotted: str, value) -> None:
  *parents, last = dotted.split('.')
  for part in parents:
    config = config[part]
  config[last] = value


def write_listing(out: str, num_clusters: int) -> str:
  """by_cluster/cluster_K.txt from assignments.csv, most confident first."""
  with open(os.path.join(out, 'assignments.csv'), newline='') as f:
    rows = list(csv.DictReader(f))
  listing = os.path.join(out, 'by_cluster')
  os.makedirs(listing, exist_ok=True)
  width = len(str(num_clusters - 1))
  for k in range(num_clusters):
    members = sorted((r for r in rows if int(r['cluster']) == k),
                     key=lambda r: -float(r['confidence']))
    with open(os.path.join(listing, f'cluster_{k:0{width}d}.txt'), 'w') as f:
      f.writelines(f'{r["path"]}\n' for r in members)
  return listing


def prepare(folder: str, num_clusters: int | None, out: str | None,
            backbone: str, overrides: dict) -> ml_collections.ConfigDict:
  """Checks every input and returns the config to train; raises InputError
  (one line) before anything is written."""
  if not out:
    raise InputError('--out is required (where the run and its results go)')
  if num_clusters is None or num_clusters < 2:
    raise InputError(f'--num_clusters={num_clusters}: need at least 2')
  paths, sides, unreadable = inspect_folder(folder)
  if num_clusters > len(paths):
    raise InputError(f'--num_clusters={num_clusters} is more than the '
                     f'{len(paths)} readable images of {folder!r}')
  if backbone and not os.path.isdir(os.path.join(backbone, 'variables')):
    raise InputError(f'--backbone={backbone!r} is not a converted backbone '
                     '(python -m cdcjax.convert writes DIR/variables)')
  check_out(out, folder)
  if unreadable:
    logging.warning('%s: %d of %d image files are not readable and are '
                    'skipped', folder, unreadable, unreadable + len(paths))
  config = recipe(folder, num_clusters, len(paths), choose_side(sides),
                  backbone)
  for field, value in overrides.items():
    _set(config, field, value)
  try:
    config_validation.validate(config, jax.device_count())
  except config_validation.ConfigError as e:
    raise InputError(str(e)) from None
  return config


def run(folder, num_clusters, out, backbone='', overrides=None) -> dict:
  """prepare, train (or resume) in out, write the listing; returns the final
  evaluation."""
  config = prepare(folder, num_clusters, out, backbone, overrides or {})
  logging.info('Recipe for %s: %s', folder, _describe(config))
  train.check_inputs(config)
  result = train.train_and_evaluate(config, out)
  listing = write_listing(out, config.num_clusters)
  logging.info('Clusters of %d images: %s/assignments.csv, %s, %s/report/'
               'index.html', result['num_examples'], out, listing, out)
  return result


def _describe(c) -> str:
  start = (f'heads on the frozen backbone {c.init_from}' if c.init_from else
           'from scratch')
  return (f'CDC {start}, {c.model.backbone} at {c.data.image_size} px, '
          f'K={c.num_clusters}, batch {c.batch_size}, {c.total_steps} steps')


def main(argv):
  if len(argv) != 2:
    sys.exit('error: give one IMAGE_FOLDER (python -m cdcjax.cluster '
             'IMAGE_FOLDER --num_clusters=K --out=DIR)')
  config = flags.FLAGS.config
  overrides = {f: _get(config, f) for f in _overridden_fields(sys.argv)}
  try:
    run(argv[1], flags.FLAGS.num_clusters, flags.FLAGS.out,
        flags.FLAGS.backbone, overrides)
  except (InputError, TrainingFailure, FileNotFoundError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  # Defined here, not on import: cdcjax.main has its own --config.
  flags.DEFINE_integer('num_clusters', None, 'K, the number of clusters.')
  flags.DEFINE_string('out', None, 'Directory for the run and its results.')
  flags.DEFINE_string('backbone', '', 'A converted backbone (the --out of '
                      'python -m cdcjax.convert).')
  config_flags.DEFINE_config_dict('config', config_defaults.base_config())
  cli.console_logging()
  app.run(main)
