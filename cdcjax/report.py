"""The report of a run: what ended up together.

  python -m cdcjax.report --workdir=DIR

restores DIR's newest checkpoint, evaluates it as training does, and writes
DIR/report/: index.html (opens from disk) with, per cluster, a grid of its
most confident images and a strip of its least confident ones (size and, with
labels, majority class), the cluster sizes, the confusion matrix after
Hungarian matching (with labels), a t-SNE map of the backbone features
coloured by cluster and by class, and the training curves of metrics.jsonl.
Training writes the same report after its final evaluation
(config.report.enabled). Needs matplotlib: pip install 'cdcjax[viz]'.

Confidence: the cluster head's posterior of its cluster for `cluster_head`;
for the k-means and merged evaluators, 1 - d1 / d2, the distance to the own
cluster's centroid against the nearest other one's (0 on a border).
"""

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging
from etils import epath
import jax
import ml_collections
import numpy as np

from cdcjax import checkpoints
from cdcjax import cli
from cdcjax import config_defaults
from cdcjax import data as data_lib
from cdcjax import evaluation
from cdcjax import evaluators
from cdcjax import figures
from cdcjax.errors import TrainingFailure

REPORT_DIR = 'report'
_CHUNK = 4096  # Rows per distance block (K = 1000 clusters stays small).


def centroid_margin(x: np.ndarray, predictions: np.ndarray) -> np.ndarray:
  """1 - d_own / d_nearest_other in [0, 1], d = distance to cluster means."""
  x = np.asarray(x, np.float32).reshape(len(x), -1)
  used, position = np.unique(predictions, return_inverse=True)
  if len(used) < 2:
    return np.ones(len(x), np.float32)
  centroids = np.stack([x[predictions == k].mean(axis=0) for k in used])
  out = np.empty(len(x), np.float32)
  for start in range(0, len(x), _CHUNK):
    rows = slice(start, start + _CHUNK)
    d2 = (np.sum(x[rows] ** 2, axis=1, keepdims=True) - 2 * x[rows] @
          centroids.T + np.sum(centroids ** 2, axis=1))
    d = np.sqrt(np.maximum(d2, 0))
    own = d[np.arange(len(d)), position[rows]]
    d[np.arange(len(d)), position[rows]] = np.inf
    out[rows] = 1 - own / np.maximum(d.min(axis=1), 1e-12)
  return np.clip(out, 0, 1)


def cluster_confidence(config, evaluator: str, embeddings: dict,
                       predictions: np.ndarray) -> np.ndarray:
  """How sure the evaluator is of each image's cluster (higher: surer)."""
  if evaluator == 'cluster_head':
    probabilities = evaluation.cluster_probabilities(config, embeddings['c'])
    return probabilities[np.arange(len(predictions)), predictions]
  space = {'cluster_head_merged': lambda: embeddings['cluster_probs'],
           'kmeans_features': lambda: embeddings['features'],
           'kmeans_head': lambda: evaluators.head_embedding(embeddings)}
  return centroid_margin(space[evaluator](), predictions)


def class_names_of(source) -> list[str]:
  names = getattr(source, 'class_names', None)
  return list(names) if names else [str(i) for i in range(source.num_classes)]


def overview_grid(source, predictions, confidence, num_clusters: int,
                  per_cluster: int = 8, max_clusters: int = 20) -> np.ndarray:
  """One row per cluster (the largest max_clusters): its most confident
  images, for TensorBoard."""
  sizes = np.bincount(predictions, minlength=num_clusters)
  shown = [k for k in np.argsort(-sizes, kind='stable')[:max_clusters]
           if sizes[k]]
  image_shape = source.read([0]).shape[1:]
  rows = []
  for k in shown:
    members = figures.ranked_members(predictions, confidence, k)[:per_cluster]
    images = figures.to_uint8(source.read(members))
    blank = np.full((per_cluster - len(images),) + image_shape[:2] + (3,),
                    255, np.uint8)
    rows.append(np.concatenate([images, blank]))
  return figures.image_grid(np.concatenate(rows), per_cluster)


def write_report(out_dir, *, source, predictions, confidence, features,
                 num_clusters: int, settings, title: str, summary: list,
                 metrics_path=None, seed: int = 0) -> dict:
  """Writes the figures and index.html into out_dir; returns {figure: path}.

  source: the evaluated images (read(indices) -> floats in [0, 1]), with
  labels (-1: unlabelled) and class_names. predictions, confidence: per image.
  features: (N, D) for the map. settings: config.report.
  """
  out = epath.Path(out_dir)
  (out / 'clusters').mkdir(parents=True, exist_ok=True)
  predictions = np.asarray(predictions, np.int64)
  labels = np.asarray(source.labels, np.int64)
  labelled = labels >= 0
  names = class_names_of(source)
  has_labels = bool(source.num_classes) and labelled.any()
  sizes = np.bincount(predictions, minlength=num_clusters)
  written, sections = {}, []
  # The numbers behind the figures, for notebooks and tests.
  numbers = {'num_images': int(len(predictions)),
             'cluster_sizes': sizes.tolist(), 'class_names': names}

  majority = [None] * num_clusters
  if has_labels:
    for k in range(num_clusters):
      at = (predictions == k) & labelled
      if at.any():
        counts = np.bincount(labels[at], minlength=source.num_classes)
        majority[k] = (names[counts.argmax()], counts.max() / at.sum())

  written['sizes'] = out / 'sizes.png'
  figures.bar_chart(written['sizes'], sizes,
                    [m[0] if m else '-' for m in majority]
                    if has_labels else None)
  sections.append(('Cluster sizes', figures.figure_html('sizes.png',
                                                        'cluster sizes')))
  if has_labels:
    counts, order = figures.matched_confusion(
        predictions[labelled], labels[labelled], num_clusters,
        source.num_classes)
    numbers['confusion'] = counts.tolist()  # [class][column]
    numbers['confusion_cluster_order'] = order.tolist()  # Column -> cluster.
    written['confusion'] = out / 'confusion.png'
    figures.confusion_figure(written['confusion'], counts, order, names)
    sections.append(('Confusion matrix (clusters matched to classes)',
                     figures.figure_html('confusion.png', 'confusion matrix')))

  chosen, coords = figures.embedding_map(features, settings.map_points, seed)
  written['map_clusters'] = out / 'map_clusters.png'
  figures.map_figure(written['map_clusters'], coords, predictions[chosen],
                     f't-SNE of the backbone features ({len(chosen)} images), '
                     'by cluster')
  maps = '<div class="row">' + figures.figure_html('map_clusters.png',
                                                     'map by cluster')
  if has_labels:
    written['map_labels'] = out / 'map_labels.png'
    figures.map_figure(written['map_labels'], coords, labels[chosen],
                       'the same map, by class', names)
    maps += figures.figure_html('map_labels.png', 'map by class')
  sections.append(('Map of the embeddings', maps + '</div>'))

  if metrics_path is not None:
    train_records, eval_records = figures.read_metrics(epath.Path(
        metrics_path))
    if figures.curves_figure(out / 'curves.png', train_records, eval_records):
      written['curves'] = out / 'curves.png'
      sections.append(('Training curves', figures.figure_html(
          'curves.png', 'training curves')))

  shown = [int(k) for k in np.argsort(-sizes, kind='stable')
           if sizes[k]][:settings.max_clusters]
  blocks = []
  note = ''
  if len(shown) < np.count_nonzero(sizes):
    note = (f'<p class="label">The {len(shown)} largest of '
            f'{np.count_nonzero(sizes)} non-empty clusters '
            '(config.report.max_clusters).</p>')
  for k in shown:
    ranked = figures.ranked_members(predictions, confidence, k)
    top = ranked[:settings.grid_images]
    bottom = ranked[len(top):][-settings.strip_images:][::-1]
    head = f'Cluster {k}: {sizes[k]} images'
    if majority[k] is not None:
      head += f', majority class {majority[k][0]} ({majority[k][1]:.0%})'
    block = f'<div class="cluster"><h3>{head}</h3>'
    for part, members, columns in (('top', top, 8),
                                   ('bottom', bottom, settings.strip_images)):
      if not len(members):
        continue
      path = out / 'clusters' / f'cluster_{k:04d}_{part}.png'
      figures.save_png(figures.image_grid(
          figures.to_uint8(source.read(members)), columns), path)
      written[f'cluster_{k}_{part}'] = path
      what = ('most confident' if part == 'top' else
              'least confident (least confident first)')
      block += (f'<div class="label">{len(members)} {what}</div>'
                f'<img src="clusters/{path.name}" alt="cluster {k} {part}">')
    blocks.append(block + '</div>')
  sections.append(('Clusters (largest first)',
                   note + '<div class="row">' + '\n'.join(blocks) + '</div>'))
  numbers['majority_class'] = [m and [m[0], round(float(m[1]), 4)]
                               for m in majority]
  (out / 'report.json').write_text(json.dumps(numbers, indent=1))
  written['numbers'] = out / 'report.json'
  (out / 'index.html').write_text(figures.page(title, summary, sections))
  written['index'] = out / 'index.html'
  return written


def write_run_report(trainer, eval_source, result: dict, workdir,
                     step: int) -> dict | None:
  """The report of the latest evaluation (trainer.last_embeddings and
  last_predictions), written by process 0 into workdir/report."""
  config = trainer.config
  if not config.report.enabled or jax.process_index() != 0:
    return None
  try:
    figures.require_matplotlib()
  except ImportError as e:
    logging.warning('No report written: %s', e)
    return None
  embeddings, predictions = trainer.last_embeddings, trainer.last_predictions
  evaluator = result['evaluator']
  confidence = cluster_confidence(config, evaluator, embeddings, predictions)
  summary = [('method', config.method), ('data', eval_source.name),
             ('step', step), ('evaluator', evaluator),
             ('images', len(predictions))]
  summary += [(k.upper(), f'{result[k]:.4f}') for k in ('acc', 'nmi', 'ari')
              if k in result]
  if 'cluster_heads' in result:
    summary.append(('cluster head', f"{result['cluster_heads']['selected']} "
                    f'of {config.model.num_cluster_heads} (lowest loss)'))
  root = checkpoints.workdir_path(workdir)
  written = write_report(
      root / REPORT_DIR, source=eval_source, predictions=predictions,
      confidence=confidence, features=embeddings['features'],
      num_clusters=len(result['cluster_sizes']), settings=config.report,
      title=f'cdcjax report: {config.method} on {eval_source.name}',
      summary=summary, metrics_path=root / 'metrics.jsonl', seed=config.seed)
  logging.info('Report: %s', written['index'])
  return written


def load_config(workdir) -> ml_collections.ConfigDict:
  """The run's stored config.json over today's defaults (fields added since
  the run started keep their defaults)."""
  path = checkpoints.workdir_path(workdir) / 'config.json'
  if not path.exists():
    raise FileNotFoundError(f'{workdir} holds no cdcjax run (no config.json)')
  config = config_defaults.base_config()
  _merge(config, json.loads(path.read_text()))
  return config


def _merge(config, stored: dict) -> None:
  with config.unlocked():
    for key, value in stored.items():
      current = config.get(key)
      if isinstance(value, dict) and isinstance(current,
                                                ml_collections.ConfigDict):
        _merge(current, value)
      elif isinstance(value, list) and (current is None or
                                        isinstance(current, tuple)):
        config[key] = tuple(value)
      else:
        config[key] = value


def report_workdir(workdir: str) -> dict:
  """Evaluates the newest checkpoint in workdir and writes its report."""
  from cdcjax import train  # pylint: disable=g-import-not-at-top
  config = load_config(workdir)
  with config.unlocked():
    config.report.enabled = True
  figures.require_matplotlib()
  source = data_lib.load_source(config.data, config.data.train_split)
  eval_source = source
  if config.data.eval_split != config.data.train_split:
    eval_source = data_lib.load_source(config.data, config.data.eval_split)
  trainer = train.Trainer(config, train.make_mesh(),
                          train.image_shape_of(config, source), len(source))
  manager = checkpoints.open_manager(workdir, config.keep_checkpoints,
                                     config.keep_checkpoint_every_steps)
  trainer.state, step = checkpoints.restore_latest(manager, trainer.state,
                                                   None)
  manager.close()
  if step == 0:
    raise TrainingFailure(f'{workdir} holds no checkpoint yet')
  result = trainer.evaluate(eval_source, source)
  evaluation.log_eval(step, result)
  return write_run_report(trainer, eval_source, result, workdir, step)


def main(argv):
  if len(argv) > 1:
    sys.exit(f'error: unexpected arguments: {" ".join(argv[1:])}')
  if not flags.FLAGS.workdir:
    sys.exit('error: --workdir is required')
  try:
    written = report_workdir(flags.FLAGS.workdir)
  except (FileNotFoundError, ImportError, TrainingFailure) as e:
    sys.exit(f'error: {e}')
  if written:
    print(os.fspath(written['index']))


if __name__ == '__main__':
  # Defined here: cdcjax.main imports this module and has its own --workdir.
  flags.DEFINE_string('workdir', None, 'The run to report on.')
  cli.console_logging()
  app.run(main)
