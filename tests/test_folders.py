"""Image folders: what is read, what is skipped, labels from subfolders, and a
tiny training run that writes the clusters of an unlabelled folder."""

import csv
import os

import numpy as np
from PIL import Image
import pytest

from cdcjax import config_validation
from cdcjax import data
from cdcjax import folders
from cdcjax import train


def _save(path, mode, size=(40, 30), value=128):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  channels = {'L': 1, 'RGB': 3, 'RGBA': 4}[mode]
  array = np.full((size[1], size[0], channels), value, np.uint8)
  array[..., 0] = np.arange(size[0], dtype=np.uint8)[None] * 3
  Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(
      path)


def _messy_folder(root, labelled=True):
  """Good images (grey PNG, RGBA PNG, RGB JPEG, WebP) and bad files (an empty
  .jpg, text in a .png) and a non-image file that is not even looked at."""
  sub = (lambda c: os.path.join(root, c)) if labelled else (lambda c: root)
  _save(os.path.join(sub('cats'), 'grey.png'), 'L')
  _save(os.path.join(sub('cats'), 'nested', 'rgba.PNG'), 'RGBA')
  _save(os.path.join(sub('dogs'), 'rgb.jpg'), 'RGB', size=(30, 50))
  _save(os.path.join(sub('dogs'), 'photo.webp'), 'RGB')
  for i in range(4):
    _save(os.path.join(sub('dogs' if i % 2 else 'cats'), f'more{i}.png'),
          'RGB', value=40 * i)
  open(os.path.join(sub('dogs'), 'empty.jpg'), 'wb').close()
  with open(os.path.join(sub('cats'), 'corrupt.png'), 'w') as f:
    f.write('not an image')
  with open(os.path.join(root, 'notes.txt'), 'w') as f:
    f.write('ignored')


def test_decode_converts_modes_and_crops_to_square(tmp_path):
  _save(str(tmp_path / 'a.png'), 'RGBA', size=(40, 20))
  _save(str(tmp_path / 'b.png'), 'L', size=(20, 40))
  for name in ('a.png', 'b.png'):
    image = folders.decode(str(tmp_path / name), 16)
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8


def test_messy_labelled_folder_skips_bad_files_with_one_warning_each(
    tmp_path, caplog):
  _messy_folder(str(tmp_path))
  with caplog.at_level('WARNING'):
    images, labels, classes, paths = folders.load_folder(str(tmp_path), 8)
  assert images.shape == (8, 8, 8, 3)
  assert classes == ['cats', 'dogs']
  assert sorted(paths) == paths and 'cats/nested/rgba.PNG' in paths
  assert all(labels[i] == (p.startswith('dogs')) for i, p in enumerate(paths))
  skips = [r for r in caplog.records if 'skipping' in r.getMessage()]
  assert len(skips) == 2  # empty.jpg and corrupt.png, one warning each.
  assert any('skipped 2 of 10' in r.getMessage() for r in caplog.records)


def test_folder_without_readable_images_fails_clearly(tmp_path):
  with pytest.raises(FileNotFoundError, match='holds no image file'):
    folders.load_folder(str(tmp_path), 8)
  open(tmp_path / 'empty.jpg', 'wb').close()
  with pytest.raises(FileNotFoundError, match='none of its 1 image files'):
    folders.load_folder(str(tmp_path), 8)
  with pytest.raises(FileNotFoundError, match='not a directory'):
    folders.load_folder(str(tmp_path / 'missing'), 8)


def _tiny_config(path):
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      'folder_cdc', os.path.join(os.path.dirname(__file__), '..', 'configs',
                                 'folder_cdc.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config('tiny')
  config.data.path = path
  config.data.image_size = 8
  config_validation.validate(config, 8)
  return config


def test_unlabelled_folder_trains_and_writes_clusters(tmp_path):
  _messy_folder(str(tmp_path / 'photos'), labelled=False)
  config = _tiny_config(str(tmp_path / 'photos'))
  result = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert 'acc' not in result and result['num_examples'] == 8
  with open(tmp_path / 'run' / 'assignments.csv') as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 8 and {r['path'] for r in rows} >= {'rgb.jpg',
                                                           'grey.png'}
  assert all(0 <= int(r['cluster']) < config.num_clusters for r in rows)
  assert all(0 <= float(r['confidence']) <= 1 for r in rows)


def test_unlabelled_folder_refuses_label_evaluators_before_work(tmp_path):
  _messy_folder(str(tmp_path / 'photos'), labelled=False)
  config = _tiny_config(str(tmp_path / 'photos'))
  config.evaluators = ('cluster_head', 'linear_probe')
  with pytest.raises(train.TrainingFailure, match='unlabelled'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not os.path.exists(tmp_path / 'run')


def test_empty_folder_fails_in_check_inputs(tmp_path):
  config = _tiny_config(str(tmp_path))
  with pytest.raises(FileNotFoundError, match='holds no image file'):
    train.check_inputs(config)


def test_folder_source_has_no_split(tmp_path):
  _messy_folder(str(tmp_path))
  config = _tiny_config(str(tmp_path))
  with pytest.raises(ValueError, match='no .train. split'):
    data.load_source(config.data, 'train')


@pytest.mark.slow
def test_tiny_imagenet_config_runs_tiny_on_a_labelled_folder(tmp_path):
  import importlib.util  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.dirname(__file__), '..', 'configs',
                      'tiny_imagenet_cdc.py')
  spec = importlib.util.spec_from_file_location('tiny_imagenet_cdc', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  full = module.get_config()
  assert full.num_clusters == 200 and full.aug.output_size == 224
  assert full.model.backbone == 'resnet34' and full.aug.recipe == 'cc'
  root = str(tmp_path / 'train')
  for i in range(8):  # Tiny-ImageNet's layout: <wnid>/images/<file>.JPEG.
    _save(os.path.join(root, f'n0{i % 2}', 'images', f'{i}.JPEG'), 'RGB',
          size=(64, 64), value=30 * i)
  config = module.get_config('tiny')
  config.data.path = root
  config_validation.validate(config, 8)
  result = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert result['num_examples'] == 8 and 0 <= result['acc'] <= 1
