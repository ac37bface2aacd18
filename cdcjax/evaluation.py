"""Evaluation of a trained model: the configured evaluators on the
embeddings of every evaluation image, and their log lines and outputs.

`trainer` is a `cdcjax.train.Trainer`: its `embed` gives the model's outputs
for each image exactly once, on any number of devices and processes.
"""

import json

from absl import logging
from etils import epath
import jax
import numpy as np

from cdcjax import augment
from cdcjax import data as data_lib
from cdcjax import evaluators
from cdcjax import methods
from cdcjax import metrics as metrics_lib
from cdcjax.errors import TrainingFailure


def evaluate(trainer, eval_source, train_source=None) -> dict:
  """Runs config.evaluators; the first one's acc / nmi / ari are the record's
  top-level metrics, the others are nested under their names."""
  config = trainer.config
  names = list(config.evaluators)
  embeddings = trainer.embed(eval_source)
  if 'cluster_head_merged' in names:
    embeddings['cluster_probs'] = cluster_probabilities(config,
                                                        embeddings['c'])
  labels = eval_source.labels
  count = lambda name: evaluators.output_clusters(
      name, config.num_clusters, config.eval_num_clusters)
  predictions = evaluators.cluster_predictions(
      names[0], embeddings, count(names[0]), config.seed)
  # For the clusters.csv of folders and the report (cdcjax/report.py).
  trainer.last_predictions, trainer.last_embeddings = predictions, embeddings
  result = {'evaluator': names[0], **metrics_lib.clustering_metrics(
      predictions, labels, count(names[0]))}
  if 'c_heads' in embeddings:
    result['cluster_heads'] = _cluster_heads(trainer, embeddings, labels)
  for name in names[1:]:
    if name in evaluators.CLUSTERING_EVALUATORS:
      extra = evaluators.clustering_result(name, embeddings, labels,
                                           count(name), config.seed)
      result[name] = {k: extra[k] for k in ('acc', 'nmi', 'ari',
                                            'cluster_size_entropy')
                      if k in extra}
    elif name == 'linear_probe':
      result[name] = _linear_probe(trainer, embeddings, eval_source,
                                   train_source)
    elif name == 'latent_stats':
      result[name] = _latent_stats(trainer, eval_source)
  return result


def cluster_probabilities(config, c: np.ndarray) -> np.ndarray:
  """The cluster head's posteriors (the method's softmax) on host arrays."""
  return np.asarray(jax.nn.softmax(methods.cluster_logits(config, {'c': c}),
                                   axis=-1))


def _cluster_heads(trainer, embeddings, labels) -> dict:
  """Every cluster head's ACC beside its average loss and its mean NMI with
  the other heads' partitions: shows whether the lowest-loss head (the one
  that predicts), or the most agreed-with one, is the best one."""
  head_losses = np.asarray(jax.device_get(trainer.state.head_losses))
  out = {'selected': int(methods.selected_head(head_losses)),
         'average_loss': [round(float(v), 4) for v in head_losses]}
  partitions = [np.argmax(c, axis=1)
                for c in np.moveaxis(embeddings['c_heads'], 1, 0)]
  # Unsupervised alternative to the loss rule, logged to be measured.
  out['agreement_nmi'] = [round(v, 4)
                          for v in metrics_lib.mean_agreement(partitions)]
  scores = [metrics_lib.clustering_metrics(p, labels,
                                          trainer.config.num_clusters)
            for p in partitions]
  if all('acc' in s for s in scores):  # Labelled data.
    out['acc'] = [round(s['acc'], 4) for s in scores]
    config = trainer.config
    if 'cluster_head_merged' in config.evaluators:
      merged = [evaluators.merge_clusters(
          cluster_probabilities(config, c), config.eval_num_clusters)
                for c in np.moveaxis(embeddings['c_heads'], 1, 0)]
      out['merged_acc'] = [round(metrics_lib.cluster_accuracy(
          p, labels, config.eval_num_clusters), 4) for p in merged]
  return out


def _linear_probe(trainer, embeddings, eval_source, train_source) -> dict:
  """Train split -> evaluation split; with no separate train split (digits),
  a fixed half of the evaluation set trains the probe and the rest scores."""
  features, labels = embeddings['features'], eval_source.labels
  if train_source is None or train_source is eval_source:
    order = np.random.default_rng(0).permutation(len(labels))
    fit, score = order[:len(order) // 2], order[len(order) // 2:]
    out = evaluators.linear_probe(features[fit], labels[fit], features[score],
                                  labels[score])
    return {**out, 'protocol': 'half of the evaluation set'}
  train_features = trainer.embed(train_source)['features']
  train_labels = train_source.labels
  labelled = train_labels >= 0  # STL-10's unlabelled images: -1.
  out = evaluators.linear_probe(train_features[labelled],
                                train_labels[labelled], features, labels)
  return {**out, 'protocol': f'{train_source.name} -> {eval_source.name}'}


def _latent_stats(trainer, eval_source) -> dict:
  config = trainer.config
  rng = np.random.default_rng(config.seed)
  n = min(len(eval_source), evaluators.LATENT_STATS_IMAGES)
  chosen = np.sort(rng.permutation(len(eval_source))[:n])
  images = eval_source.read(chosen)
  views = []
  for view in range(2):
    augmented = augment.augment(images, rng, config.aug, view=view,
                                with_colour=True)
    views.append(trainer.embed(data_lib.ArraySource(
        augmented, eval_source.labels[chosen], eval_source.num_classes,
        eval_source.name)))
  return evaluators.latent_stats(views[0], views[1],
                                 eval_source.labels[chosen],
                                 config.loss.temperature)


def check_labels(config, eval_source) -> None:
  """Unlabelled data (an image folder without class subfolders) can be
  clustered but not scored by evaluators that need labels."""
  needs_labels = [n for n in config.evaluators
                  if n in ('linear_probe', 'latent_stats')]
  if eval_source.num_classes == 0 and needs_labels:
    raise TrainingFailure(
        f'{eval_source.name} is unlabelled (no class subfolders) but '
        f'config.evaluators has {needs_labels}, which need labels; use only '
        f'{evaluators.CLUSTERING_EVALUATORS}')


ASSIGNMENTS_FILE = 'assignments.csv'


def write_assignments(path, source, predictions, confidence) -> None:
  """CSV of image file, cluster and confidence, one row per image (through
  epath, so a gs:// workdir works)."""
  rows = ['path,cluster,confidence\n'] + [
      f'{json.dumps(name) if "," in name else name},{int(cluster)},'
      f'{float(sure):.4f}\n'
      for name, cluster, sure in zip(source.paths, predictions, confidence)]
  epath.Path(path).write_text(''.join(rows))


def log_eval(step: int, result: dict) -> None:
  if 'acc' not in result:  # Unlabelled data.
    logging.info('eval step %d (%s): unlabelled | cluster sizes %s (size '
                 'entropy %.3f)', step, result['evaluator'],
                 result['cluster_sizes'], result['cluster_size_entropy'])
    return
  logging.info('eval step %d (%s): ACC %.4f NMI %.4f ARI %.4f | cluster sizes '
               '%s (size entropy %.3f), majority classes %s', step,
               result['evaluator'], result['acc'], result['nmi'],
               result['ari'], result['cluster_sizes'],
               result['cluster_size_entropy'],
               result['cluster_majority_class'])
  for name, extra in result.items():
    if name == 'latent_stats':
      logging.info('eval step %d latent_stats: %s', step,
                   evaluators.format_latent_stats(extra))
    elif isinstance(extra, dict):
      logging.info('eval step %d %s: %s', step, name, ', '.join(
          f'{k} {v:.4f}' if isinstance(v, float) else f'{k} {v}'
          for k, v in extra.items()))
