"""PyTorch -> Flax conversion: the converted MoCo v3 ResNet-50 fixture
reproduces torchvision's outputs without torch; bad inputs give one clear
message; the reader refuses pickles that would run code."""

import os
import pickle
import subprocess
import sys
import zipfile

import jax
import numpy as np
import pytest

from cdcjax import convert
from cdcjax import torch_checkpoint
from tests import torch_format

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO_ROOT, '..', 'shared', 'fixtures')
CHECKPOINT = os.path.join(FIXTURES, 'moco_v3_r50_random.pth.tar')
REFERENCE = os.path.join(FIXTURES, 'moco_v3_r50_random_reference.npz')
needs_fixture = pytest.mark.skipif(
    not os.path.exists(CHECKPOINT),
    reason='../shared/fixtures/moco_v3_r50_random.pth.tar is not here')

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


@pytest.fixture(scope='module')
def state_dict():
  return convert.state_dict_of(torch_checkpoint.load(CHECKPOINT))


def _relative_error(actual, expected):
  return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


@needs_fixture
def test_moco_v3_fixture_matches_torchvision(state_dict):
  assert state_dict['module.base_encoder.conv1.weight'].dtype == np.float16
  variables = convert.convert_state_dict(state_dict, 'moco_v3')
  assert set(variables) == {'backbone', 'projector', 'predictor'}
  ref = np.load(REFERENCE)
  images = (ref['images_nhwc'] - IMAGENET_MEAN) / IMAGENET_STD
  backbone = convert.backbone_module()
  pooled, state = jax.jit(lambda v, x: backbone.apply(
      v, x, train=False, capture_intermediates=True))(
          variables['backbone'], images)
  inter = state['intermediates']
  for stage, blocks in enumerate((3, 4, 6, 3), start=1):
    out = np.asarray(inter[f'layer{stage}_{blocks - 1}']['__call__'][0])
    error = _relative_error(out.mean(axis=(1, 2)), ref[f'stage{stage}'])
    assert error < 1e-4, (stage, error)
  assert _relative_error(np.asarray(pooled), ref['pooled']) < 1e-4
  fields = dict((name, f) for name, _, f in convert.LAYOUTS['moco_v3']['heads'])
  projector = convert.head_module(fields['projector']).apply(
      variables['projector'], pooled, train=False)
  assert _relative_error(np.asarray(projector), ref['projector']) < 1e-4
  predictor = convert.head_module(fields['predictor']).apply(
      variables['predictor'], projector, train=False)
  assert _relative_error(np.asarray(predictor), ref['predictor']) < 1e-4


@needs_fixture
def test_wrong_layout_names_the_first_missing_key(state_dict):
  with pytest.raises(convert.ConversionError,
                     match=r"torchvision: 265 missing keys \(first: 'bn1.bias'\)"):
    convert.convert_state_dict(state_dict, 'torchvision')


@needs_fixture
def test_unexpected_key_and_shape_mismatch_are_named(state_dict):
  extra = dict(state_dict)
  extra['module.base_encoder.extra.weight'] = np.zeros(3, np.float32)
  with pytest.raises(convert.ConversionError,
                     match="unexpected keys .*'module.base_encoder.extra"):
    convert.convert_state_dict(extra, 'moco_v3')
  bad = dict(state_dict)
  bad['module.base_encoder.layer2.0.conv1.weight'] = np.zeros(
      (64, 256, 1, 1), np.float32)
  with pytest.raises(convert.ConversionError,
                     match=r"layer2.0.conv1.weight.*\(64, 256, 1, 1\).*"
                           r"\(1, 1, 256, 128\)"):
    convert.convert_state_dict(bad, 'moco_v3')


def test_not_a_checkpoint(tmp_path):
  (tmp_path / 'notes.txt').write_text('hello')
  with pytest.raises(torch_checkpoint.NotATorchCheckpoint,
                     match='not a PyTorch checkpoint'):
    torch_checkpoint.load(str(tmp_path / 'notes.txt'))
  with zipfile.ZipFile(tmp_path / 'other.zip', 'w') as z:
    z.writestr('readme.md', 'x')
  with pytest.raises(torch_checkpoint.NotATorchCheckpoint,
                     match='0 data.pkl'):
    torch_checkpoint.load(str(tmp_path / 'other.zip'))


class _RunsCode:
  def __reduce__(self):
    return (os.system, ('echo pwned',))


def test_reader_refuses_globals_that_run_code(tmp_path):
  payload = pickle.dumps({'state_dict': _RunsCode()}, protocol=2)
  with zipfile.ZipFile(tmp_path / 'evil.pth', 'w') as z:
    z.writestr('evil/data.pkl', payload)
  with pytest.raises(torch_checkpoint.NotATorchCheckpoint,
                     match='refusing to load it'):
    torch_checkpoint.load(str(tmp_path / 'evil.pth'))


def test_reader_rebuilds_strided_tensors(tmp_path):
  """A hand-made checkpoint in torch's format: a transposed (non-contiguous)
  float32 view and a float16 tensor with an offset."""
  storage = np.arange(12, dtype=np.float32)
  halves = np.arange(8, dtype=np.float16)
  obj = {'a': torch_format.Tensor(storage, 0, (4, 3), (1, 4)),
         'b': torch_format.Tensor(halves, 2, (3,), (1,))}
  torch_format.save(obj, str(tmp_path / 'hand.pth'), name='hand')
  loaded = torch_checkpoint.load(str(tmp_path / 'hand.pth'))
  np.testing.assert_array_equal(loaded['a'], storage.reshape(3, 4).T)
  np.testing.assert_array_equal(loaded['b'], halves[2:5])
  assert loaded['b'].dtype == np.float16


@pytest.mark.slow  # Two subprocesses converting 25M parameters.
@needs_fixture
def test_cli_converts_and_refuses_to_overwrite(tmp_path):
  out = str(tmp_path / 'converted')
  cmd = [sys.executable, '-m', 'cdcjax.convert', '--from=moco_v3', CHECKPOINT,
         f'--out={out}']
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  first = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
  assert first.returncode == 0, first.stderr[-2000:]
  assert 'source dtypes float16' in first.stdout
  restored = convert.restore(out)
  assert restored['backbone']['params']['conv1']['kernel'].shape == (
      7, 7, 3, 64)
  again = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
  assert again.returncode == 2
  assert 'already holds a converted checkpoint' in again.stderr
  assert 'Traceback' not in again.stderr
