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


def _np_nmi(a, b):
  """NMI with the arithmetic-mean normalisation, from its definition."""
  joint = np.zeros((a.max() + 1, b.max() + 1))
  np.add.at(joint, (a, b), 1.0)
  joint /= joint.sum()
  pa, pb = joint.sum(1), joint.sum(0)
  nz = joint > 0
  mi = (joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])).sum()
  entropy = lambda p: -(p[p > 0] * np.log(p[p > 0])).sum()
  return mi / ((entropy(pa) + entropy(pb)) / 2)


def test_mean_agreement_is_each_partitions_mean_nmi_with_the_others():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 4, 300)
  relabelled = rng.permutation(4)[labels]  # The same partition.
  noisy = np.where(rng.random(300) < 0.3, rng.integers(0, 4, 300), labels)
  unrelated = rng.integers(0, 4, 300)
  partitions = [labels, relabelled, noisy, unrelated]
  agreement = metrics.mean_agreement(partitions)
  for i, p in enumerate(partitions):
    expected = np.mean([_np_nmi(p, q) for j, q in enumerate(partitions)
                        if j != i])
    assert agreement[i] == pytest.approx(expected, abs=1e-9)
  # The two copies agree most, the unrelated partition least.
  assert agreement[0] == pytest.approx(agreement[1])
  assert agreement[0] > agreement[2] > agreement[3]
  with pytest.raises(ValueError, match='at least 2 partitions, got 1'):
    metrics.mean_agreement([labels])
