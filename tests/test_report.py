"""The run report (cdcjax/report.py, cdcjax/figures.py) and TensorBoard
events (cdcjax/summaries.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cdcjax import config_defaults
from cdcjax import config_validation
from cdcjax import recipes
from cdcjax import data as data_lib
from cdcjax import figures
from cdcjax import methods
from cdcjax import report
from cdcjax import train

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = ('sizes', 'confusion', 'map_clusters', 'map_labels', 'curves',
           'numbers', 'index')


def _settings(**overrides):
  settings = config_defaults.base_config().report
  settings.map_points = 60
  settings.update(overrides)
  return settings


def _coded_source(num_clusters=3, per_cluster=20, labelled=True):
  """Images whose grey value encodes (cluster, rank): image i of cluster k
  is flat at (10 * k + rank + 1) / 255. Labels: the cluster, except rank 0
  of every cluster gets the next cluster's label (a confusion)."""
  images, labels, predictions, confidence = [], [], [], []
  for k in range(num_clusters):
    for rank in range(per_cluster):
      images.append(np.full((6, 6, 1), 10 * k + rank + 1, np.uint8))
      labels.append((k + 1) % num_clusters if rank == 0 else k)
      predictions.append(k)
      confidence.append(1.0 - rank / per_cluster)  # rank 0 most confident
  labels = np.array(labels) if labelled else np.full(len(labels), -1)
  source = data_lib.ArraySource(
      np.stack(images), labels, num_classes=num_clusters if labelled else 0,
      name='coded', class_names=tuple(f'class{i}' for i in range(num_clusters))
      if labelled else None)
  features = np.random.default_rng(0).normal(size=(len(images), 8))
  features[:, 0] += 5 * np.array(predictions)
  return source, np.array(predictions), np.array(confidence), features


def _write(tmp_path, labelled=True, metrics=True, **settings):
  source, predictions, confidence, features = _coded_source(
      labelled=labelled)
  metrics_path = tmp_path / 'metrics.jsonl'
  if metrics:
    records = [{'step': s, 'split': 'train', 'loss': 3.0 / s, 'infonce': 2.0,
                'steps_per_sec': 5.0} for s in (1, 2, 3)]
    records.append({'step': 3, 'split': 'eval', 'acc': 0.9, 'nmi': 0.8})
    metrics_path.write_text(''.join(json.dumps(r) + '\n' for r in records))
  written = report.write_report(
      tmp_path / 'report', source=source, predictions=predictions,
      confidence=confidence, features=features, num_clusters=3,
      settings=_settings(**settings), title='t', summary=[('ACC', 0.9)],
      metrics_path=metrics_path)
  return written, source, predictions


def test_labelled_report_has_every_figure_and_counts_every_image(tmp_path):
  written, source, _ = _write(tmp_path)
  for name in FIGURES:
    assert written[name].exists() and os.path.getsize(written[name]) > 0, name
  numbers = json.loads(written['numbers'].read_text())
  assert np.sum(numbers['confusion']) == len(source) == numbers['num_images']
  # Cluster k is matched to class k: the diagonal holds the 19 agreeing
  # images, and the moved rank-0 images sit off it.
  confusion = np.array(numbers['confusion'])
  assert numbers['confusion_cluster_order'] == [0, 1, 2]
  assert np.all(np.diag(confusion) == 19)
  assert numbers['majority_class'][1] == ['class1', 0.95]
  html = written['index'].read_text()
  for name in ('sizes.png', 'confusion.png', 'map_labels.png', 'curves.png',
               'clusters/cluster_0002_top.png'):
    assert f'src="{name}"' in html, name
  assert 'majority class class1 (95%)' in html


def test_unlabelled_report_leaves_out_only_the_label_figures(tmp_path):
  written, _, _ = _write(tmp_path, labelled=False, metrics=False,
                        grid_images=10)
  for name in ('sizes', 'map_clusters', 'index', 'numbers',
               'cluster_0_top', 'cluster_0_bottom'):
    assert written[name].exists(), name
  for name in ('confusion', 'map_labels', 'curves'):
    assert name not in written
  assert not (tmp_path / 'report' / 'confusion.png').exists()
  assert 'majority class' not in written['index'].read_text()


def _thumbnail_values(path, count, side):
  """The grey value of each thumbnail of a grid (one row)."""
  grid = np.asarray(Image.open(path))
  step = side + 2  # The 2-pixel gap.
  return [int(grid[side // 2, i * step + side // 2, 0]) for i in range(count)]


def test_grids_show_the_clusters_images_most_confident_first(tmp_path):
  written, _, _ = _write(tmp_path, grid_images=5, strip_images=3)
  side = 6 * int(np.ceil(figures.MIN_THUMBNAIL / 6))  # Upscaled, 48 px.
  for k in range(3):
    top = _thumbnail_values(written[f'cluster_{k}_top'], 5, side)
    assert top == [10 * k + rank + 1 for rank in range(5)]
    bottom = _thumbnail_values(written[f'cluster_{k}_bottom'], 3, side)
    assert bottom == [10 * k + rank + 1 for rank in (19, 18, 17)]
  assert Image.open(written['cluster_0_top']).size[1] == side  # Not tiny.


def test_small_cluster_strip_does_not_repeat_the_grid(tmp_path):
  written, _, _ = _write(tmp_path, grid_images=18, strip_images=8)
  side = 48
  assert Image.open(written['cluster_0_bottom']).size[0] == 2 * side + 2


def test_matched_confusion_reorders_a_permuted_clustering():
  labels = np.array([0, 0, 1, 1, 2, 2, 2])
  predictions = np.array([2, 2, 0, 0, 1, 1, 0])
  counts, order = figures.matched_confusion(predictions, labels, 4, 3)
  assert order.tolist()[:3] == [2, 0, 1] and sorted(order) == [0, 1, 2, 3]
  assert np.diag(counts).tolist() == [2, 2, 2] and counts.sum() == 7


def test_centroid_margin_is_one_at_a_centroid_and_zero_on_a_border():
  x = np.array([[0.0], [0.0], [10.0], [10.0], [5.0], [2.5]])
  predictions = np.array([0, 0, 1, 1, 0, 0])
  margin = report.centroid_margin(x, predictions)
  # Cluster 0's mean is 1.875, cluster 1's 10.
  assert np.all((margin >= 0) & (margin <= 1))
  assert margin[2] == pytest.approx(1.0)
  assert margin[0] == pytest.approx(1 - 1.875 / 10)
  assert margin[4] < margin[0] < margin[5]
  assert np.all(report.centroid_margin(x, np.zeros(6, int)) == 1)


@pytest.mark.parametrize('method', config_validation.METHODS)
def test_confidence_for_every_methods_first_evaluator(method):
  config = recipes.set_method(recipes.digits('tiny'), method,
                                     'tiny')
  rng = np.random.default_rng(0)
  n, k = 50, config.num_clusters
  embeddings = {'features': rng.normal(size=(n, 16)),
                's': rng.normal(size=(n, 8)), 'f': rng.normal(size=(n, 8)),
                'c': rng.normal(size=(n, k))}
  name = config.evaluators[0]
  predictions = (np.argmax(embeddings['c'], axis=1)
                 if name == 'cluster_head' else rng.integers(0, k, n))
  confidence = report.cluster_confidence(config, name, embeddings,
                                         predictions)
  assert confidence.shape == (n,) and np.all((confidence >= 0) &
                                             (confidence <= 1))
  if name == 'cluster_head':  # The posterior of the predicted cluster.
    probs = np.exp(np.asarray(methods.cluster_logits(config, embeddings)))
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(confidence, probs.max(axis=1), rtol=1e-5)


class _FakeTrainer:

  def __init__(self, config, n=40):
    rng = np.random.default_rng(1)
    self.config = config
    self.last_embeddings = {'features': rng.normal(size=(n, 8)),
                            'c': rng.normal(size=(n, config.num_clusters))}
    self.last_predictions = np.argmax(self.last_embeddings['c'], axis=1)


def test_run_report_names_the_selected_head_and_only_process_0_writes(
    tmp_path, monkeypatch):
  config = recipes.digits('tiny')
  config.report.enabled = True
  config.report.map_points = 30
  trainer = _FakeTrainer(config)
  source = data_lib.ArraySource(
      np.zeros((40, 4, 4, 1), np.float32), np.arange(40) % 10, 10, 'fake')
  result = {'evaluator': 'cluster_head', 'acc': 0.5, 'nmi': 0.4, 'ari': 0.3,
            'cluster_sizes': np.bincount(trainer.last_predictions,
                                         minlength=10).tolist(),
            'cluster_heads': {'selected': 2}}
  monkeypatch.setattr(report.jax, 'process_index', lambda: 1)
  assert report.write_run_report(trainer, source, result, tmp_path, 7) is None
  assert not (tmp_path / 'report').exists()
  monkeypatch.setattr(report.jax, 'process_index', lambda: 0)
  written = report.write_run_report(trainer, source, result, tmp_path, 7)
  page = written['index'].read_text()
  assert 'cluster head' in page and '2 of' in page and '0.5000' in page
  config.report.enabled = False
  assert report.write_run_report(trainer, source, result, tmp_path / 'off',
                                 7) is None


@pytest.mark.e2e  # A training run and a re-evaluation: about a minute.
def test_training_writes_report_and_events_and_the_cli_remakes_it(tmp_path):
  """A tiny digits run with the report on: the report after training,
  TensorBoard scalars and cluster grids; then cdcjax.report on the finished
  workdir writes it again from the checkpoint."""
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  config = recipes.set_method(recipes.digits('tiny'), 'cdc',
                                    'tiny')
  config.evaluators = ('cluster_head',)
  config.report.enabled = True
  config.report.map_points = 200
  config.eval_every_steps = 8
  workdir = str(tmp_path / 'run')
  result = train.train_and_evaluate(config, workdir)
  index = tmp_path / 'run' / 'report' / 'index.html'
  assert index.exists()
  numbers = json.loads((tmp_path / 'run' / 'report' / 'report.json')
                       .read_text())
  assert np.sum(numbers['confusion']) == result['num_examples'] == 1797
  assert numbers['cluster_sizes'] == result['cluster_sizes']

  tags, images = set(), 0
  events_dir = tmp_path / 'run' / 'tensorboard'
  for name in os.listdir(events_dir):
    raw = (events_dir / name).read_bytes()
    position = 0
    while position < len(raw):  # TFRecord framing: length, crc, data, crc.
      length = int.from_bytes(raw[position:position + 8], 'little')
      event = event_pb2.Event.FromString(
          raw[position + 12:position + 12 + length])
      position += 16 + length
      for value in event.summary.value:
        tags.add(value.tag)
        images += value.HasField('image')
  assert {'train/loss', 'train/infonce', 'eval/acc', 'eval/nmi'} <= tags
  assert images == 2  # Evaluations at steps 8 and 12.

  index.unlink()
  written = report.report_workdir(workdir)
  assert written['index'] == index and index.exists()


def test_report_cli_refuses_a_directory_without_a_run(tmp_path):
  out = subprocess.run([sys.executable, '-m', 'cdcjax.report',
                        f'--workdir={tmp_path}'], cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode != 0
  assert out.stderr.strip().splitlines()[-1] == (
      f'error: {tmp_path} holds no cdcjax run (no config.json)')
