"""Clustering metrics: ACC (Hungarian matching), NMI, ARI and cluster sizes."""

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as sk_metrics


def contingency(predictions: np.ndarray, labels: np.ndarray,
                num_clusters: int, num_classes: int) -> np.ndarray:
  """counts[k, c] = number of samples in cluster k with label c."""
  counts = np.zeros((num_clusters, num_classes), dtype=np.int64)
  np.add.at(counts, (predictions, labels), 1)
  return counts


def cluster_accuracy(predictions: np.ndarray, labels: np.ndarray,
                     num_clusters: int | None = None) -> float:
  """Fraction of samples correctly labelled under the best mapping of clusters
  to classes.

  With at most as many clusters as classes the mapping is one-to-one (the
  Hungarian algorithm on the contingency table), the papers' ACC. With more
  clusters than classes it is many-to-one: every cluster is labelled with its
  majority class (the overclustering protocol of IIC and SCAN).
  """
  num_clusters = num_clusters or int(predictions.max()) + 1
  num_classes = int(labels.max()) + 1
  return _accuracy_of(contingency(predictions, labels, num_clusters,
                                  num_classes))


def _accuracy_of(counts: np.ndarray) -> float:
  """cluster_accuracy from the contingency table counts[cluster, class]."""
  if counts.shape[0] > counts.shape[1]:
    return float(counts.max(axis=1).sum() / counts.sum())
  rows, cols = linear_sum_assignment(counts, maximize=True)
  return float(counts[rows, cols].sum() / counts.sum())


def cluster_size_entropy(sizes: np.ndarray) -> float:
  """Entropy of the cluster-size distribution divided by log K: 1 for equal
  sizes, 0 when every sample is in one cluster (collapse)."""
  p = sizes / max(sizes.sum(), 1)
  p = p[p > 0]
  return float(-(p * np.log(p)).sum() / np.log(len(sizes)))


def mean_agreement(partitions) -> list[float]:
  """Each partition's mean NMI with the other partitions of the same images
  (no labels needed): the partition the others agree with most is the
  consensus of an ensemble (several cluster heads)."""
  partitions = [np.asarray(p, dtype=np.int64) for p in partitions]
  if len(partitions) < 2:
    raise ValueError(f'need at least 2 partitions, got {len(partitions)}')
  nmi = np.eye(len(partitions))
  for i in range(len(partitions)):
    for j in range(i + 1, len(partitions)):
      nmi[i, j] = nmi[j, i] = sk_metrics.normalized_mutual_info_score(
          partitions[i], partitions[j])
  return [float((row.sum() - 1.0) / (len(row) - 1)) for row in nmi]


def clustering_metrics(predictions: np.ndarray, labels: np.ndarray,
                       num_clusters: int) -> dict:
  predictions = np.asarray(predictions, dtype=np.int64)
  labels = np.asarray(labels, dtype=np.int64)
  if predictions.shape != labels.shape:
    raise ValueError(f'predictions {predictions.shape} and labels '
                     f'{labels.shape} differ in shape')
  sizes = np.bincount(predictions, minlength=num_clusters)
  if np.all(labels < 0):  # Unlabelled: sizes only, no ACC/NMI/ARI.
    return {'num_examples': int(len(labels)), 'cluster_sizes': sizes.tolist(),
            'cluster_size_entropy': cluster_size_entropy(sizes)}
  counts = contingency(predictions, labels, num_clusters,
                       int(labels.max()) + 1)
  # Each cluster's majority class (-1: empty): a merge shows as a class that
  # is no cluster's majority, a split as a class that is several clusters'.
  majority = np.where(sizes > 0, counts.argmax(axis=1), -1)
  return {
      'acc': _accuracy_of(counts),
      'nmi': float(sk_metrics.normalized_mutual_info_score(labels, predictions)),
      'ari': float(sk_metrics.adjusted_rand_score(labels, predictions)),
      'num_examples': int(len(labels)),
      'cluster_sizes': sizes.tolist(),
      'cluster_size_entropy': cluster_size_entropy(sizes),
      'cluster_majority_class': majority.tolist(),
      # counts[k][c]: cluster k, class c (kept for small tables only).
      **({'contingency': counts.tolist()} if counts.size <= 2500 else {}),
  }
