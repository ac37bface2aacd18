"""python -m cdcjax.cluster: its recipe, its refusals (each before any
training, nothing in --out lost) and, with -m e2e, a folder of three kinds
of generated images clustered end to end."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from cdcjax import cluster
from cdcjax import demo_images
from cdcjax import metrics
from cdcjax import train
from cdcjax import workdir as workdir_lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(name='folder')
def _folder(tmp_path):
  root = str(tmp_path / 'images')
  demo_images.write_folder(root, per_kind=4)
  return root


def _refusal(folder, out, k=3, backbone=''):
  with pytest.raises(cluster.InputError) as info:
    cluster.prepare(folder, k, out, backbone, {})
  return str(info.value)


def test_bad_inputs_get_one_line_each(tmp_path, folder):
  out = str(tmp_path / 'out')
  empty = tmp_path / 'empty'
  empty.mkdir()
  (empty / 'notes.txt').write_text('not an image')
  assert 'holds no image file' in _refusal(str(empty), out)
  assert 'is not a directory' in _refusal(str(tmp_path / 'missing'), out)
  broken = tmp_path / 'broken'
  broken.mkdir()
  for name in ('a.png', 'b.jpg'):
    (broken / name).write_bytes(b'not really an image')
  assert 'none of its 2 image files could be read' in _refusal(str(broken),
                                                               out)
  assert '--num_clusters=1: need at least 2' in _refusal(folder, out, k=1)
  assert ('--num_clusters=13 is more than the 12 readable images' in
          _refusal(folder, out, k=13))
  assert 'inside the image folder' in _refusal(folder,
                                               os.path.join(folder, 'out'))
  assert 'not a converted backbone' in _refusal(folder, out,
                                                backbone=str(tmp_path))
  for message in (_refusal(str(empty), out), _refusal(folder, out, k=1)):
    assert '\n' not in message
  assert not os.path.exists(out)  # Nothing written by any refusal.


def test_out_that_holds_something_else_is_left_alone(tmp_path, folder):
  out = tmp_path / 'documents'
  out.mkdir()
  (out / 'thesis.tex').write_text('precious')
  assert 'not empty and holds no cdcjax run' in _refusal(folder, str(out))
  assert (out / 'thesis.tex').read_text() == 'precious'
  assert os.listdir(out) == ['thesis.tex']


def test_unreadable_files_are_skipped_and_counted(tmp_path, folder):
  (tmp_path / 'images' / 'broken.png').write_bytes(b'\x89PNG broken')
  paths, sides, unreadable = cluster.inspect_folder(folder)
  assert len(paths) == 12 and unreadable == 1 and set(sides) == {16}


def test_recipe_follows_the_folder(tmp_path, folder):
  config = cluster.prepare(folder, 3, str(tmp_path / 'out'), '', {})
  assert config.data.image_size == 16  # The images are 16 px.
  assert config.num_clusters == 3 and config.data.name == 'folder'
  assert config.batch_size == 8 and not config.init_from
  assert cluster.choose_side([100, 70, 90]) == 64
  assert cluster.choose_side([10, 12]) == 16
  overridden = cluster.prepare(folder, 3, str(tmp_path / 'out'), '',
                               {'total_steps': 7, 'data.image_size': 32})
  assert overridden.total_steps == 7 and overridden.data.image_size == 32
  backbone = tmp_path / 'converted'
  (backbone / 'variables').mkdir(parents=True)
  frozen = cluster.prepare(folder, 3, str(tmp_path / 'out'), str(backbone),
                           {})
  assert frozen.model.freeze_backbone and frozen.model.backbone == 'resnet50'
  assert frozen.init_from == str(backbone) and frozen.data.image_size == 224


def test_cli_says_what_is_wrong_in_one_line(tmp_path, folder):
  out = subprocess.run(
      [sys.executable, '-m', 'cdcjax.cluster', folder, '--num_clusters=99',
       f'--out={tmp_path / "out"}'], cwd=REPO_ROOT, capture_output=True,
      text=True, timeout=120)
  assert out.returncode != 0
  assert out.stderr.strip().splitlines()[-1] == (
      f'error: --num_clusters=99 is more than the 12 readable images of '
      f'{folder!r}')


@pytest.mark.e2e
def test_three_kinds_of_images_are_recovered(tmp_path):
  """300 generated images (gradients, stripes, speckle),
  K = 3 through the command line, at the recipe's own length; rerunning
  the same command resumes (evaluates the finished run) and keeps the CSV."""
  folder = str(tmp_path / 'images')
  demo_images.write_folder(folder, per_kind=100)
  out = str(tmp_path / 'out')
  command = [sys.executable, '-m', 'cdcjax.cluster', folder,
             '--num_clusters=3', f'--out={out}']
  # The optimised XLA build (the test suite's fast-compile flags make this
  # 400-step run several times slower).
  env = {**os.environ, 'XLA_FLAGS': '', 'JAX_NUM_CPU_DEVICES': '1'}
  run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                       timeout=1200, env=env)
  assert run.returncode == 0, run.stderr[-3000:]
  assert 'ETA' in run.stderr
  with open(os.path.join(out, 'assignments.csv')) as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 300
  kinds = np.array([demo_images.KINDS.index(r['path'].split('_')[0])
                    for r in rows])
  predicted = np.array([int(r['cluster']) for r in rows])
  accuracy = metrics.cluster_accuracy(predicted, kinds, 3)
  print(f'ACC against the kinds: {accuracy:.4f}')
  assert accuracy >= 0.9
  listed = sum(len(open(os.path.join(out, 'by_cluster', f)).read().split())
               for f in os.listdir(os.path.join(out, 'by_cluster')))
  assert listed == 300
  assert os.path.exists(os.path.join(out, 'report', 'index.html'))
  again = subprocess.run(command, cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=600, env=env)
  assert again.returncode == 0 and 'already finished' in again.stderr


def test_out_that_holds_another_run_is_refused_and_kept(tmp_path, folder):
  out = str(tmp_path / 'out')
  other = str(tmp_path / 'other')
  demo_images.write_folder(other, per_kind=3, seed=1)
  stored = cluster.prepare(other, 3, out, '', {})
  os.makedirs(out)
  workdir_lib.check_workdir_config(stored, out)  # As a run on `other` leaves it.
  before = open(os.path.join(out, 'config.json')).read()
  with pytest.raises(train.TrainingFailure, match='different config'):
    cluster.run(folder, 3, out)
  assert open(os.path.join(out, 'config.json')).read() == before
  assert os.listdir(out) == ['config.json']
