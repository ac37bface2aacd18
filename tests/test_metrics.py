import numpy as np
import pytest

from cdcjax import metrics


def test_accuracy_is_invariant_to_cluster_permutation():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 5, 200)
  permutation = rng.permutation(5)
  result = metrics.clustering_metrics(permutation[labels], labels, 5)
  assert result['acc'] == 1.0
  assert result['nmi'] == pytest.approx(1.0)
  assert result['ari'] == pytest.approx(1.0)


def test_accuracy_known_example():
  labels = np.array([0, 0, 0, 1, 1, 1])
  predictions = np.array([1, 1, 0, 0, 0, 0])
  # Best mapping: cluster 1 -> class 0 (2 right), cluster 0 -> class 1 (3 right).
  assert metrics.cluster_accuracy(predictions, labels, 2) == pytest.approx(5 / 6)


def test_collapse_shows_in_sizes_and_entropy():
  labels = np.arange(100) % 10
  collapsed = metrics.clustering_metrics(np.zeros(100, int), labels, 10)
  assert collapsed['cluster_sizes'] == [100] + [0] * 9
  assert collapsed['cluster_size_entropy'] == 0.0
  assert collapsed['acc'] == pytest.approx(0.1)
  balanced = metrics.clustering_metrics(labels, labels, 10)
  assert balanced['cluster_size_entropy'] == pytest.approx(1.0)


def test_shape_mismatch_is_an_error():
  with pytest.raises(ValueError, match='shape'):
    metrics.clustering_metrics(np.zeros(3, int), np.zeros(4, int), 2)


def test_more_clusters_than_classes_maps_many_to_one():
  labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
  # Class 0 split over clusters 0 and 1; cluster 2 mostly class 1.
  predictions = np.array([0, 0, 1, 1, 2, 2, 2, 1])
  # Majority mapping: 0 -> 0 (2), 1 -> 0 (2 of 3), 2 -> 1 (3): 7 of 8.
  assert metrics.cluster_accuracy(predictions, labels, 3) == pytest.approx(7 / 8)
  # One-to-one would have to leave a cluster unmatched: at most 6 of 8.
  counts = metrics.contingency(predictions, labels, 3, 2)
  assert counts.max(axis=1).sum() == 7


def test_majority_class_shows_merges_splits_and_empty_clusters():
  labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
  # Cluster 0 and 1 split class 0, cluster 2 merges classes 1 and 2 (1 wins
  # ties by argmax order), cluster 3 is empty.
  predictions = np.array([0, 0, 1, 1, 2, 2, 2, 2])
  out = metrics.clustering_metrics(predictions, labels, num_clusters=4)
  assert out['cluster_majority_class'] == [0, 0, 1, -1]
  assert out['contingency'] == [[2, 0, 0], [2, 0, 0], [0, 2, 2], [0, 0, 0]]
