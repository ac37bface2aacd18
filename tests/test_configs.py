"""Every config file loads, validates and documents its own command; the
CIFAR-10 recipe (colour augmentation) trains end to end on a fake .npz."""

import glob
import importlib.util
import json
import os

import numpy as np
import pytest

from cdcjax import config_validation
from cdcjax import train

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILES = sorted(glob.glob(os.path.join(REPO_ROOT, 'configs', '*.py')))


def _load(path):
  spec = importlib.util.spec_from_file_location('config_under_test', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_there_is_a_config_per_dataset_and_method():
  names = {os.path.basename(p)[:-3] for p in CONFIG_FILES}
  for dataset in ('digits', 'mnist', 'usps', 'cifar10'):
    for method in ('cdc', 'cc', 'cd', 'simclr', 'selflabel'):
      assert f'{dataset}_{method}' in names


@pytest.mark.parametrize('path', CONFIG_FILES,
                         ids=[os.path.basename(p) for p in CONFIG_FILES])
def test_config_loads_validates_and_gives_its_command(path):
  module = _load(path)
  name = os.path.basename(path)
  assert f'--config=configs/{name}' in module.__doc__
  for arg in (None, 'tiny'):
    config = module.get_config(arg)
    # A two-stage run of its own (config.pretrain) makes its own init_from.
    if ((config.method == 'selflabel' or config.init_fresh) and
        not config.pretrain.method):
      # Required: a two-stage config without it is refused before any work.
      with pytest.raises(config_validation.ConfigError, match='init_from'):
        config_validation.validate(config, num_devices=1)
      config.init_from = '/some/run'  # Checked for content later.
    if config.data.name == 'folder':
      config.data.path = '/some/photos'  # Required; checked before work.
    config_validation.validate(config, num_devices=1)
    assert config.method in name


def _fake_colour_npz(path, n_train=96, n_test=40):
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, n_train + n_test)
  # Class-dependent colour so the images are not pure noise.
  base = rng.uniform(size=(10, 1, 1, 3))[labels]
  images = np.clip(base + 0.2 * rng.normal(size=(len(labels), 32, 32, 3)),
                   0, 1)
  np.savez(path, images=(images * 255).astype(np.uint8), labels=labels,
           split=np.r_[np.zeros(n_train), np.ones(n_test)].astype(np.uint8))


@pytest.mark.parametrize('aug', [
    pytest.param({}, id='simclr_on_host', marks=pytest.mark.slow),
    pytest.param({'recipe': 'moco_v3', 'color_on_device': True,
                  'output_size': 24}, id='moco_v3_on_device_resized',
                 marks=pytest.mark.slow)])
def test_cifar10_tiny_trains_with_colour_augmentation(tmp_path, aug):
  _fake_colour_npz(tmp_path / 'cifar10.npz')
  config = _load(os.path.join(REPO_ROOT, 'configs', 'cifar10_cdc.py')
                 ).get_config('tiny')
  config.aug.update(aug)
  config.data.path = str(tmp_path / 'cifar10.npz')
  config.total_steps = 3
  config.evaluators = ('cluster_head', 'kmeans_features')
  config_validation.validate(config, num_devices=8)
  result = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert result['num_examples'] == 40  # The test split, every image once.
  assert 0 <= result['acc'] <= 1
  with open(tmp_path / 'run' / 'metrics.jsonl') as f:
    train_records = [json.loads(l) for l in f if '"train"' in l]
  assert all(np.isfinite(r['loss']) for r in train_records)


def _flat(config, prefix=''):
  out = {}
  for key, value in config.items():
    if hasattr(value, 'items'):
      out.update(_flat(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = value
  return out


@pytest.mark.parametrize('data,stage1,measured', [
    # README, "CDC's heads on a frozen SimCLR backbone": the runs' settings.
    ('digits', 'simclr', {'init_fresh': ('cluster_head',),
                          'model.freeze_backbone': True, 'num_epochs': 600,
                          'loss.sinkhorn_iters': 10}),
    ('usps', 'simclr', {'init_fresh': ('cluster_head',),
                        'model.freeze_backbone': True,
                        'loss.sinkhorn_balance': 0.5}),
    ('usps', 'cd', {'init_fresh': ('cluster_head',),
                    'init_skip': ('feature_predictor',),
                    'model.freeze_backbone': True,
                    'loss.sinkhorn_balance': 0.5, 'total_steps': 3000,
                    'loss.equipartition_warmup_fraction': 0.4667,
                    'loss.sinkhorn_balance_final': 0.1,
                    'loss.sinkhorn_balance_final_from': 0.6667,
                    'model.num_cluster_heads': 5, 'num_clusters': 20,
                    'eval_num_clusters': 10,
                    'evaluators': ('cluster_head_merged', 'cluster_head',
                                   'kmeans_features', 'linear_probe',
                                   'latent_stats')}),
])
def test_two_stage_configs_differ_from_cdc_only_by_the_measured_fields(
    data, stage1, measured):
  scratch = _flat(_load(os.path.join(REPO_ROOT, 'configs',
                                     f'{data}_cdc.py')).get_config())
  two_stage = _flat(_load(os.path.join(
      REPO_ROOT, 'configs', f'{data}_cdc_on_{stage1}.py')).get_config())
  assert scratch.keys() == two_stage.keys()
  changed = {k: two_stage[k] for k in scratch
             if scratch[k] != two_stage[k]}
  assert {k: tuple(v) if isinstance(v, (list, tuple)) else v
          for k, v in changed.items()} == measured


@pytest.mark.parametrize('data', ['digits', 'usps', 'mnist'])
def test_paper_reading_configs_differ_from_cdc_only_by_the_four_choices(
    data):
  """Issue 31: each *_cdc_paper.py is its dataset's CDC config with the
  four literal readings, and nothing else (so the two rows compare them)."""
  for arg in (None, 'tiny'):
    default = _flat(_load(os.path.join(REPO_ROOT, 'configs',
                                       f'{data}_cdc.py')).get_config(arg))
    paper = _flat(_load(os.path.join(
        REPO_ROOT, 'configs', f'{data}_cdc_paper.py')).get_config(arg))
    assert default.keys() == paper.keys()
    changed = {k: paper[k] for k in default if default[k] != paper[k]}
    assert changed == {'loss.equipartition_warmup_fraction': 0.0,
                       'loss.renormalize_concat': True,
                       'loss.sinkhorn_target': 'same',
                       'model.head_layout': 'shared'}


@pytest.mark.parametrize('num_devices', [1, 8, 16, 64, 256])
def test_every_config_validates_on_power_of_two_device_counts(num_devices):
  """Pod sizes: the full configs start on 1 to 256 devices (evaluation
  batches are padded to a multiple of the device count)."""
  for path in CONFIG_FILES:
    config = _load(path).get_config()
    if ((config.method == 'selflabel' or config.init_fresh) and
        not config.pretrain.method):
      config.init_from = '/some/run'
    if config.data.name == 'folder':
      config.data.path = '/some/photos'
    config_validation.validate(config, num_devices=num_devices)


def _results_rows():
  """(config file, ACC cell) of each row of the README's results table."""
  with open(os.path.join(REPO_ROOT, 'README.md')) as f:
    text = f.read()
  table = text.split('## Results', 1)[1].split('\n## ', 1)[0]
  rows = []
  for line in table.splitlines():
    cells = [c.strip() for c in line.strip('|').split('|')]
    if len(cells) == 6 and cells[2].startswith('`'):
      rows.append((cells[2].split('`')[1], cells[3].strip('*')))
  return rows


def test_readme_results_rows_name_configs_whose_docstring_has_the_figure():
  rows = _results_rows()
  assert len(rows) >= 8
  for config_file, acc in rows:
    path = os.path.join(REPO_ROOT, 'configs', config_file)
    assert os.path.exists(path), config_file
    spec = importlib.util.spec_from_file_location(config_file[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    docstring = ' '.join(module.__doc__.split())
    assert acc.replace('±', '+-') in docstring, (config_file, acc)
