"""tensorflow-datasets sources on tfds.testing.mock_data: reading, labels,
class lists, clear errors for unknown or unprepared datasets, a tiny run."""

import os

import numpy as np
import pytest

tfds = pytest.importorskip('tensorflow_datasets')

from cdcjax import config_defaults  # pylint: disable=g-import-not-at-top
from cdcjax import config_validation
from cdcjax import recipes
from cdcjax import data
from cdcjax import tfds_source
from cdcjax import train


def _data_config(**kw):
  c = config_defaults.base_config().data
  c.name = 'tfds'
  c.update(kw)
  return c


def test_reads_images_at_size_with_the_chosen_label():
  with tfds.testing.mock_data(num_examples=12):
    source = data.load_source(_data_config(
        tfds_name='cifar100', tfds_label='coarse_label', image_size=16),
                              'train')
    assert len(source) == 12 and source.num_classes == 20
    images = source.read([0, 5])
    assert images.shape == (2, 16, 16, 3) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    assert source.labels.shape == (12,) and source.labels.max() < 20
    assert source[3]['image'].shape == (16, 16, 3)


def test_class_list_keeps_and_relabels_those_classes(tmp_path):
  with tfds.testing.mock_data(num_examples=60):
    full = data.load_source(_data_config(tfds_name='cifar10', image_size=8),
                            'train')
    names = tfds.builder('cifar10').info.features['label'].names
    (tmp_path / 'classes.txt').write_text(f'{names[3]}\n{names[1]}\n')
    subset = data.load_source(_data_config(
        tfds_name='cifar10', image_size=8,
        class_list=str(tmp_path / 'classes.txt')), 'train')
  keep = np.isin(full.labels, [3, 1])
  assert len(subset) == keep.sum() and subset.num_classes == 2
  np.testing.assert_array_equal(subset.labels,
                                np.where(full.labels[keep] == 3, 0, 1))


def test_unknown_and_unprepared_datasets_fail_with_how_to(tmp_path):
  with pytest.raises(FileNotFoundError, match='not a tensorflow-datasets'):
    tfds_source.check_prepared('no_such_dataset_xyz', str(tmp_path))
  with pytest.raises(FileNotFoundError, match='tfds build cifar10'):
    tfds_source.check_prepared('cifar10', str(tmp_path))


def test_unprepared_dataset_fails_in_check_inputs_before_work(tmp_path):
  config = recipes.cifar10('tiny')
  config.data.name = 'tfds'
  config.data.tfds_name = 'cifar10'
  config.data.tfds_dir = str(tmp_path / 'empty')
  with pytest.raises(FileNotFoundError, match='not prepared'):
    train.check_inputs(config)


@pytest.mark.parametrize('name', [
    'cifar100_20', pytest.param('stl10', marks=pytest.mark.slow),
    pytest.param('imagenet10', marks=pytest.mark.slow),
    pytest.param('imagenet_dogs', marks=pytest.mark.slow)])
def test_paper_dataset_configs_run_tiny_on_mock_data(tmp_path, name):
  import importlib.util  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.dirname(__file__), '..', 'configs',
                      f'{name}_cdc.py')
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  full = module.get_config()
  assert full.data.name == 'tfds' and full.num_clusters in (10, 15, 20)
  config = module.get_config('tiny')
  config.total_steps = 1
  config.evaluators = ('cluster_head',)
  config_validation.validate(config, 8)
  with tfds.testing.mock_data(num_examples=16):
    result = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert result['num_examples'] == 16
