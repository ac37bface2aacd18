"""The ImageNet recipe's pieces: a frozen backbone stays bit-identical while
the heads train, and the tiny imagenet config runs end to end on mock data
from the converted MoCo v3 fixture."""

import os

import jax
import numpy as np
import pytest

from cdcjax import config_validation
from cdcjax import recipes
from cdcjax import recipes_large
from cdcjax import convert
from cdcjax import data
from cdcjax import torch_checkpoint
from cdcjax import train
from tests.saved_state import latest_saved_state

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKPOINT = os.path.join(REPO_ROOT, '..', 'shared', 'fixtures',
                          'moco_v3_r50_random.pth.tar')


def test_frozen_backbone_is_bit_identical_after_steps():
  config = recipes.digits('tiny')
  config.model.freeze_backbone = True
  config.optimizer.weight_decay = 1e-2  # Must not touch the backbone either.
  source = data.load_digits()
  trainer = train.Trainer(config, train.make_mesh(), source.images.shape[1:],
                          len(source))
  before = jax.device_get(trainer.state)
  dataset = data.train_dataset(source, batch_size=config.batch_size,
                               seed=0, aug_config=config.aug)
  for step in range(3):
    trainer.step(dataset[step])
  after = jax.device_get(trainer.state)
  for collection in ('params', 'batch_stats'):
    jax.tree.map(np.testing.assert_array_equal,
                 getattr(before, collection)['backbone'],
                 getattr(after, collection)['backbone'])
  moved = jax.tree.map(lambda a, b: not np.array_equal(a, b),
                       before.params['cluster_head'],
                       after.params['cluster_head'])
  assert all(jax.tree.leaves(moved))


@pytest.mark.slow  # A real ResNet-50: about a minute on 2 cores.
@pytest.mark.skipif(not os.path.exists(CHECKPOINT),
                    reason='../shared/fixtures/moco_v3_r50_random.pth.tar '
                    'is not here')
@pytest.mark.parametrize('name', ['imagenet', 'imagenet50', 'imagenet100',
                                  'imagenet200'])
def test_tiny_imagenet_config_from_the_converted_fixture(tmp_path, name):
  pytest.importorskip('tensorflow_datasets')
  variables = convert.convert_state_dict(
      convert.state_dict_of(torch_checkpoint.load(CHECKPOINT)), 'moco_v3')
  converted = str(tmp_path / 'mocov3')
  convert.save(variables, converted, {'layout': 'moco_v3'}, overwrite=False)
  with pytest.raises(convert.ConversionError, match='--overwrite'):
    convert.save(variables, converted, {}, overwrite=False)

  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      name, os.path.join(REPO_ROOT, 'configs', f'{name}_cdc.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  full = module.get_config()
  recipe = recipes_large.IMAGENET[name]
  assert full.model.freeze_backbone
  assert full.optimizer.name == recipe['optimizer']
  assert full.num_clusters == recipe['num_clusters']
  assert full.aug.recipe == ('moco_v3' if name == 'imagenet' else 'moco_v2')
  assert full.optimizer.learning_rate == pytest.approx(
      recipe['learning_rate'] * recipe['batch_size'] / 256)
  workdir = _train_tiny_from(module.get_config('tiny'), converted, tmp_path)
  _, final = latest_saved_state(workdir)
  for collection in ('params', 'batch_stats'):
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(
        np.asarray(a), np.asarray(b, np.float32)),
                 final[collection]['backbone'],
                 variables['backbone'][collection])


@pytest.mark.slow  # A real ResNet-50: about a minute on 2 cores.
def test_imagenet100_tiny_trains_from_a_moco_v2_file_of_the_release_layout(
    tmp_path):
  """The file a MoCo v2 user downloads (main_moco.py's layout: module.
  prefix, encoder_k, queue, optimizer), converted with the layout recognised,
  starts configs/imagenet100_cdc.py:tiny on mock data."""
  pytest.importorskip('tensorflow_datasets')
  from tests import test_convert_layouts  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / 'moco_v2_800ep_pretrain.pth.tar')
  test_convert_layouts._write_moco_v2(path)  # pylint: disable=protected-access
  state_dict = convert.state_dict_of(torch_checkpoint.load(path))
  assert convert.detect_layout(state_dict) == 'moco_v2'
  variables = convert.convert_state_dict(state_dict, 'auto')
  converted = str(tmp_path / 'mocov2')
  convert.save(variables, converted, {'layout': 'moco_v2'}, overwrite=False)
  _train_tiny_from(recipes_large.imagenet('imagenet100', 'tiny'), converted,
                   tmp_path)


def _train_tiny_from(config, converted, tmp_path):
  """Trains a tiny config from a converted backbone on 16 mock images; its
  workdir."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  config.init_from = converted
  config_validation.validate(config, 8)
  workdir = str(tmp_path / 'run')
  with tfds.testing.mock_data(num_examples=16):
    result = train.train_and_evaluate(config, workdir)
  assert result['num_examples'] == 16
  assert np.isfinite(result['acc'])
  # The second evaluator: the on-device k-means of the head outputs.
  assert 0 <= result['kmeans_head']['acc'] <= 1
  return workdir
