"""Evaluators: turn the network's outputs on the evaluation set into metrics.

Each works on host arrays of embeddings (from `Trainer.embed`), so the same
code scores every method:

  cluster_head     argmax of the cluster head (CDC, CC, self-labeling).
  cluster_head_merged
                   an over-clustering head (num_clusters > eval_num_clusters)
                   merged, without labels, into eval_num_clusters clusters:
                   clusters whose probability columns are alike over the
                   evaluation images are joined (`merge_clusters`).
  kmeans_features  k-means on the pooled backbone features (K = eval_num_clusters,
                   which defaults to num_clusters), on the accelerator.
  kmeans_head      k-means on the head output: CD's feature predictions, the
                   L2-normalised instance vector otherwise.
  linear_probe     logistic regression on frozen, standardised backbone
                   features, fitted on the train split (on the accelerator
                   when it is large) and scored on the evaluation split (ACC
                   only; it uses the labels).
  latent_stats     CDC's Table VII: mean +- std of c_hat.c_hat' and
                   s_hat.s_hat' for augmented pairs, same-class and
                   different-class pairs, and the negative weights
                   w_ij = exp((c_i.c_j - c_i.c_i') / tau) by pair type.
"""

import numpy as np
from scipy.cluster import hierarchy
from sklearn import linear_model
from sklearn import preprocessing

from cdcjax import kmeans as kmeans_lib
from cdcjax import metrics as metrics_lib
from cdcjax import probe as probe_lib

EVALUATORS = ('cluster_head', 'cluster_head_merged', 'kmeans_features',
              'kmeans_head', 'linear_probe', 'latent_stats')
CLUSTERING_EVALUATORS = ('cluster_head', 'cluster_head_merged',
                         'kmeans_features', 'kmeans_head')
HEAD_EVALUATORS = ('cluster_head', 'cluster_head_merged')
# From this many training rows the linear probe is fitted on the accelerator;
# below it, by scikit-learn. `python -m cdcjax.bench probe --points=5000
# --dim=128 --clusters=10` on the 2-core CPU: 0.05-0.11 s against 0.80-0.83 s
# (compiling about 2 s once), the same ACC to 0.001.
PROBE_ON_DEVICE_FROM = 5000
# How many images latent_stats uses: its pair tables are quadratic.
LATENT_STATS_IMAGES = 1000


def _normalize(x):
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def kmeans(x, num_clusters: int, seed: int) -> np.ndarray:
  """Host assignments of x's rows (a host array or a sharded jax.Array):
  scikit-learn's KMeans algorithm (k-means++, 10 inits), jitted on the mesh
  (cdcjax/kmeans.py)."""
  return kmeans_lib.kmeans(x, num_clusters, seed)


def merge_clusters(probabilities: np.ndarray, num_groups: int) -> np.ndarray:
  """Merges the clusters of an over-clustering head into num_groups, without
  labels, and returns every image's group (0 .. num_groups - 1).

  probabilities: (N, K) cluster posteriors of N images. Each image is in its
  argmax cluster; the clusters that hold an image are joined by
  average-linkage agglomerative clustering on the cosine distance between
  their probability columns P[:, k]. Two clusters are close when the head
  spreads the same images over both (the halves of a split class), and far
  when they share few images. With at most num_groups non-empty clusters the
  argmax is returned unchanged.
  """
  probabilities = np.asarray(probabilities, dtype=np.float64)
  if probabilities.ndim != 2 or num_groups < 1:
    raise ValueError(f'merge_clusters needs (N, K) probabilities and '
                     f'num_groups >= 1, got {probabilities.shape} and '
                     f'{num_groups}')
  argmax = np.argmax(probabilities, axis=1)
  used = np.unique(argmax)
  if len(used) <= num_groups:
    return argmax
  tree = hierarchy.linkage(probabilities[:, used].T, method='average',
                           metric='cosine')
  groups = hierarchy.fcluster(tree, num_groups, criterion='maxclust') - 1
  group_of = np.zeros(probabilities.shape[1], dtype=np.int64)
  group_of[used] = groups
  return group_of[argmax]


def output_clusters(name: str, num_clusters: int,
                    eval_num_clusters: int) -> int:
  """How many clusters evaluator `name` outputs: the head's own K for
  cluster_head, eval_num_clusters (0: num_clusters) for the others."""
  if name == 'cluster_head' or not eval_num_clusters:
    return num_clusters
  return eval_num_clusters


def head_embedding(embeddings: dict) -> np.ndarray:
  if 'f' in embeddings:
    return embeddings['f']
  return _normalize(embeddings['s'])


def cluster_predictions(name: str, embeddings: dict, num_clusters: int,
                        seed: int) -> np.ndarray:
  """The partition evaluator `name` makes; num_clusters is its output count
  (`output_clusters`). cluster_head_merged reads 'cluster_probs', the head's
  posteriors (`cdcjax.evaluation` adds them)."""
  if name in HEAD_EVALUATORS and 'c' not in embeddings:
    raise ValueError(f'evaluator {name} needs a method with a cluster head '
                     '(cdc, cc, selflabel)')
  if name == 'cluster_head':
    return np.argmax(embeddings['c'], axis=1)
  if name == 'cluster_head_merged':
    return merge_clusters(embeddings['cluster_probs'], num_clusters)
  if name == 'kmeans_features':
    return kmeans(embeddings['features'], num_clusters, seed)
  if name == 'kmeans_head':
    return kmeans(head_embedding(embeddings), num_clusters, seed)
  raise ValueError(f'evaluator {name!r} does not cluster; clustering '
                   f'evaluators: {CLUSTERING_EVALUATORS}')


def linear_probe(train_features, train_labels, test_features,
                 test_labels) -> dict:
  """Logistic regression (scikit-learn's objective, C = 1) on standardised
  features: fitted on the accelerator from PROBE_ON_DEVICE_FROM training
  rows (cdcjax/probe.py), by scikit-learn below that."""
  scaler = preprocessing.StandardScaler().fit(train_features)
  train, test = scaler.transform(train_features), scaler.transform(
      test_features)
  if len(train_labels) >= PROBE_ON_DEVICE_FROM:
    classes, encoded = np.unique(train_labels, return_inverse=True)
    params, _ = probe_lib.fit_logistic_regression(train, encoded,
                                                  len(classes))
    predictions = classes[probe_lib.predict(params, test)]
    accuracy, fitted_on = np.mean(predictions == test_labels), 'device'
  else:
    model = linear_model.LogisticRegression(max_iter=1000).fit(
        train, train_labels)
    accuracy, fitted_on = model.score(test, test_labels), 'scikit-learn'
  return {'acc': float(accuracy), 'num_train': int(len(train_labels)),
          'num_test': int(len(test_labels)), 'fitted_on': fitted_on}


def _mean_std(values: np.ndarray) -> list:
  return [float(values.mean()), float(values.std())] if values.size else [
      float('nan'), float('nan')]


def latent_stats(view_a: dict, view_b: dict, labels: np.ndarray,
                 temperature: float) -> dict:
  """Table VII of the CDC paper plus the negative-weight statistics.

  view_a, view_b: embeddings ('c', 's') of two augmentations of the same
  images. Pairs (i, j), i != j, are split by label into same-class and
  different-class; the augmented pair is (i, i').
  """
  c_a, c_b = _normalize(view_a['c']), _normalize(view_b['c'])
  s_a, s_b = _normalize(view_a['s']), _normalize(view_b['s'])
  same = labels[:, None] == labels[None, :]
  off_diagonal = ~np.eye(len(labels), dtype=bool)
  result = {}
  for name, a, b in (('c', c_a, c_b), ('s', s_a, s_b)):
    gram = a @ a.T
    result[f'{name}_augmented'] = _mean_std(np.sum(a * b, axis=1))
    result[f'{name}_same_class'] = _mean_std(gram[same & off_diagonal])
    result[f'{name}_different_class'] = _mean_std(gram[~same])
  positive = np.sum(c_a * c_b, axis=1)
  weights = np.exp((c_a @ c_a.T - positive[:, None]) / temperature)
  result['w_same_class'] = _mean_std(weights[same & off_diagonal])
  result['w_different_class'] = _mean_std(weights[~same])
  return result


def format_latent_stats(stats: dict) -> str:
  rows = []
  for key in ('c', 's', 'w'):
    cells = [f'{kind} {stats[f"{key}_{kind}"][0]:+.3f} +- '
             f'{stats[f"{key}_{kind}"][1]:.3f}'
             for kind in ('augmented', 'same_class', 'different_class')
             if f'{key}_{kind}' in stats]
    rows.append(f'{key}: ' + ', '.join(cells))
  return '; '.join(rows)


def check_evaluators(names, has_cluster_head: bool, method: str) -> None:
  """Raises ValueError naming a bad evaluator before any training."""
  if not names:
    raise ValueError('config.evaluators is empty; choose from '
                     f'{EVALUATORS}')
  for name in names:
    if name not in EVALUATORS:
      raise ValueError(f'config.evaluators has {name!r}; allowed: '
                       f'{EVALUATORS}')
  if names[0] not in CLUSTERING_EVALUATORS:
    raise ValueError(f'config.evaluators[0]={names[0]!r} must cluster (it '
                     f'gives acc/nmi/ari): one of {CLUSTERING_EVALUATORS}')
  for name in HEAD_EVALUATORS:
    if name in names and not has_cluster_head:
      raise ValueError(f'config.evaluators has {name!r} but method '
                       f'{method!r} has no cluster head; use kmeans_features '
                       'or kmeans_head')
  if 'latent_stats' in names and method != 'cdc':
    raise ValueError("config.evaluators has 'latent_stats', which is defined "
                     f'for cdc only, not {method!r}')


def clustering_result(name, embeddings, labels, num_clusters, seed) -> dict:
  predictions = cluster_predictions(name, embeddings, num_clusters, seed)
  return metrics_lib.clustering_metrics(predictions, labels, num_clusters)
