"""The ResNet-50 releases people cluster with, from their committed key lists
(tests/checkpoint_layouts/, written by make_key_lists.py from the releases'
module code): each converts, its layout recognised from the keys; near
misses and unknown files get one line naming the closest layout."""

import glob
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from cdcjax import convert
from cdcjax import torch_checkpoint
from tests import torch_format

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY_LISTS = sorted(glob.glob(os.path.join(REPO_ROOT, 'tests',
                                          'checkpoint_layouts', '*.json')))
# solo-learn's BYOL: no named layout, a prefix and what to drop.
BYOL_LAYOUT = convert.custom_layout(
    'backbone.', ('projector.', 'predictor.', 'momentum_backbone.',
                  'momentum_projector.', 'classifier.'))


def _release(path):
  with open(path) as f:
    return json.load(f)


def _value(key, shape):
  """A constant per tensor that keeps a ResNet-50's activations finite:
  1 / fan-in for weights, BN's identity for its statistics and affine."""
  if key.endswith(('running_var', 'bn1.weight', 'bn2.weight', 'bn3.weight',
                   '.1.weight')) and len(shape) == 1:
    return 1.0
  if key.endswith('weight') and len(shape) > 1:
    return 1.0 / int(np.prod(shape[1:]))
  return 0.0


def checkpoint_of(release, make=np.broadcast_to):
  """The checkpoint object torch.load would give for the release: every
  tensor a constant of its shape and dtype."""
  state_dict = {k: make(np.asarray(_value(k, shape), dtype), tuple(shape))
                for k, shape, dtype in release['keys']}
  if release['entry'] is None:
    return state_dict
  return {release['entry']: state_dict, **release['other_entries']}


def test_every_release_has_a_key_list():
  names = {os.path.basename(p)[:-5] for p in KEY_LISTS}
  assert {'moco_v2_800ep_pretrain', 'moco_v3_r50_1000ep',
          'swav_800ep_pretrain', 'barlow_twins_checkpoint',
          'barlow_twins_resnet50', 'dino_resnet50_pretrain',
          'torchvision_resnet50', 'solo_learn_byol'} <= names
  # Every named layout is exercised by some release.
  layouts = {_release(p)['layout'] for p in KEY_LISTS}
  assert set(convert.SOURCES) <= layouts


@pytest.mark.parametrize('path', KEY_LISTS, ids=lambda p: os.path.basename(p))
def test_release_converts_with_its_layout_recognised(path):
  release = _release(path)
  state_dict = convert.state_dict_of(checkpoint_of(release))
  if release['layout'] is None:
    with pytest.raises(convert.ConversionError, match='no known ResNet-50 '
                       'layout fits.*closest is .*--prefix'):
      convert.detect_layout(state_dict)
    layout = BYOL_LAYOUT
  else:
    assert convert.detect_layout(state_dict) == release['layout']
    layout = 'auto'
  variables = convert.convert_state_dict(state_dict, layout)
  backbone = variables['backbone']
  assert backbone['params']['conv1']['kernel'].shape == (7, 7, 3, 64)
  # Every Flax backbone variable is filled: 25.5M parameters of ResNet-50
  # less the classifier (23.5M), and the BN statistics.
  count = sum(v.size for v in jax.tree.leaves(backbone['params']))
  assert count == 23_508_032
  expected_parts = {'moco_v3': {'backbone', 'projector', 'predictor'},
                    'moco_v2': {'backbone', 'projector'}}.get(
                        release['layout'], {'backbone'})
  assert set(variables) == expected_parts


def _moco_v2_state_dict():
  return convert.state_dict_of(checkpoint_of(_release(os.path.join(
      REPO_ROOT, 'tests', 'checkpoint_layouts',
      'moco_v2_800ep_pretrain.json'))))


def test_near_miss_names_the_closest_layout_and_its_first_problem():
  state_dict = _moco_v2_state_dict()
  missing = dict(state_dict)
  del missing['module.encoder_q.layer3.2.bn2.running_var']
  with pytest.raises(convert.ConversionError,
                     match=r"closest is moco_v2: 1 missing keys \(first: "
                           r"'module.encoder_q.layer3.2.bn2.running_var'\)"):
    convert.detect_layout(missing)
  extra = dict(state_dict, **{'module.encoder_q.extra.weight': np.zeros(3)})
  with pytest.raises(convert.ConversionError,
                     match=r"closest is moco_v2: 1 unexpected keys \(first: "
                           r"'module.encoder_q.extra.weight'\)"):
    convert.detect_layout(extra)
  # A named layout that does not fit says which key.
  with pytest.raises(convert.ConversionError,
                     match=r"swav: 265 missing keys \(first: 'module.bn1.bias'\)"):
    convert.convert_state_dict(state_dict, 'swav')


def test_checkpoint_of_no_known_layout_and_no_state_dict():
  vit = {'cls_token': np.zeros((1, 1, 768)),
         'patch_embed.proj.weight': np.zeros((768, 3, 16, 16))}
  with pytest.raises(convert.ConversionError,
                     match="no known ResNet-50 layout fits this checkpoint "
                           r"\(2 keys, first 'cls_token'\)"):
    convert.detect_layout(vit)
  with pytest.raises(convert.ConversionError,
                     match=r"top-level keys are \['epoch', 'optimizer'\]"):
    convert.state_dict_of({'epoch': 3, 'optimizer': {}})


def test_moco_v2_projector_matches_numpy():
  """MoCo v2's fc: Linear(2048, 2048) with bias, ReLU, Linear(2048, 128) with
  bias, in torch's [out, in] layout."""
  rng = np.random.default_rng(0)
  state_dict = _moco_v2_state_dict()
  w0 = rng.normal(size=(2048, 2048)).astype(np.float32) / 45
  b0 = rng.normal(size=2048).astype(np.float32)
  w2 = rng.normal(size=(128, 2048)).astype(np.float32) / 45
  b2 = rng.normal(size=128).astype(np.float32)
  prefix = 'module.encoder_q.fc.'
  state_dict.update({prefix + '0.weight': w0, prefix + '0.bias': b0,
                     prefix + '2.weight': w2, prefix + '2.bias': b2})
  variables = convert.convert_state_dict(state_dict, 'auto')
  (_, _, head_fields), = convert.LAYOUTS['moco_v2']['heads']
  x = rng.normal(size=(5, 2048)).astype(np.float32)
  got = convert.head_module(head_fields).apply(variables['projector'], x,
                                               train=False)
  expected = np.maximum(x @ w0.T + b0, 0) @ w2.T + b2
  np.testing.assert_allclose(np.asarray(got), expected, rtol=2e-5, atol=2e-5)


def _write_moco_v2(path):
  release = _release(os.path.join(REPO_ROOT, 'tests', 'checkpoint_layouts',
                                  'moco_v2_800ep_pretrain.json'))
  torch_format.save(checkpoint_of(
      release, make=lambda v, shape: torch_format.constant(shape, v, v.dtype)),
                    path)


def test_written_moco_v2_file_reads_back_as_the_release(tmp_path):
  path = str(tmp_path / 'moco_v2_800ep_pretrain.pth.tar')
  _write_moco_v2(path)
  assert os.path.getsize(path) < 1_000_000  # Constants: stored once each.
  checkpoint = torch_checkpoint.load(path)
  assert checkpoint['epoch'] == 800 and 'optimizer' in checkpoint
  state_dict = convert.state_dict_of(checkpoint)
  assert state_dict['module.queue'].shape == (128, 65536)
  assert state_dict['module.queue_ptr'].dtype == np.int64
  assert convert.detect_layout(state_dict) == 'moco_v2'


def test_cli_recognises_moco_v2_and_names_a_junk_file(tmp_path):
  path = str(tmp_path / 'moco_v2_800ep_pretrain.pth.tar')
  _write_moco_v2(path)
  out = str(tmp_path / 'converted')
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  run = subprocess.run([sys.executable, '-m', 'cdcjax.convert', path,
                        f'--out={out}'], cwd=REPO_ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-2000:]
  assert 'layout: moco_v2 (recognised from its 646 keys)' in run.stdout
  with open(os.path.join(out, 'source.json')) as f:
    assert json.load(f)['layout'] == 'moco_v2'
  restored = convert.restore(out)
  assert set(restored) == {'backbone', 'projector'}
  junk = tmp_path / 'junk.pth'
  junk.write_bytes(b'\x00' * 100)
  run = subprocess.run([sys.executable, '-m', 'cdcjax.convert', str(junk),
                        f'--out={tmp_path / "other"}'], cwd=REPO_ROOT,
                       env=env, capture_output=True, text=True, timeout=600)
  assert run.returncode == 2
  assert run.stderr.strip().startswith('error: ')
  assert 'not a PyTorch checkpoint' in run.stderr
  assert len(run.stderr.strip().splitlines()) == 1


def test_prefix_and_from_together_are_refused():
  with pytest.raises(convert.ConversionError, match='pass one of them'):
    convert._layout_from_flags('moco_v2', 'backbone.', [])  # pylint: disable=protected-access
  with pytest.raises(convert.ConversionError, match='--ignore needs --prefix'):
    convert._layout_from_flags('auto', None, ['head.'])  # pylint: disable=protected-access
