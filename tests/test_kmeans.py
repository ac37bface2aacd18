"""On-device k-means (cdcjax/kmeans.py): the same assignments on 8 fake
devices as on 1, padding that changes nothing, one Lloyd step against NumPy,
empty clusters relocated, and planted clusters found as well as
scikit-learn's KMeans finds them."""

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import pytest
from sklearn import cluster as sk_cluster
from sklearn import datasets
from sklearn import metrics

from cdcjax import kmeans
from cdcjax import train


def _blobs(n, d, k, std, seed=0):
  x, y = datasets.make_blobs(n, d, centers=k, cluster_std=std,
                             random_state=seed)
  return x.astype(np.float32), y


def test_eight_devices_give_the_one_device_assignments():
  assert len(jax.devices()) == 8
  x, _ = _blobs(803, 12, 9, std=3.0)  # 803: padded to 808 on 8 devices.
  one = kmeans.kmeans(x, 9, seed=3, mesh=train.make_mesh(jax.devices()[:1]))
  eight, info = kmeans.kmeans(x, 9, seed=3, return_info=True)
  np.testing.assert_array_equal(one, eight)
  assert one.dtype == np.int64 and one.shape == (803,)
  assert info['iterations_of_best'] >= 1
  # A jax.Array sharded over a mesh: its mesh is used, same result.
  mesh = train.make_mesh(jax.devices()[:4])
  sharded = jax.device_put(x[:800], NamedSharding(mesh, P('data', None)))
  np.testing.assert_array_equal(
      kmeans.kmeans(sharded, 9, seed=3),
      kmeans.kmeans(x[:800], 9, seed=3, mesh=mesh))
  # Replicated on a mesh: the rows are sharded over all of its axes.
  replicated = jax.device_put(x[:800], NamedSharding(mesh, P()))
  np.testing.assert_array_equal(kmeans.kmeans(replicated, 9, seed=3),
                                kmeans.kmeans(x[:800], 9, seed=3, mesh=mesh))


def test_planted_clusters_as_well_as_scikit_learn():
  """Overlapping blobs: NMI within 0.01 and inertia within 5 % of scikit-learn's
  KMeans(n_init=10), over three seeds (its best-of-10 inertia varies by a
  few per cent between seeds)."""
  x, y = _blobs(1500, 16, 15, std=6.0)  # NMI about 0.89.
  for seed in range(3):
    ours = kmeans.kmeans(x, 15, seed)
    theirs = sk_cluster.KMeans(15, n_init=10, random_state=seed).fit(x)
    nmi = metrics.normalized_mutual_info_score(y, ours)
    nmi_sk = metrics.normalized_mutual_info_score(y, theirs.labels_)
    assert nmi > 0.85 and abs(nmi - nmi_sk) < 0.01, (seed, nmi, nmi_sk)
    centres = np.stack([x[ours == k].mean(axis=0) for k in range(15)])
    inertia = float(np.sum((x - centres[ours]) ** 2))
    assert inertia < 1.05 * theirs.inertia_, (seed, inertia, theirs.inertia_)


def test_separated_clusters_are_recovered_exactly():
  x, y = _blobs(500, 8, 5, std=0.5)
  labels = kmeans.kmeans(x, 5, seed=0)
  assert metrics.adjusted_rand_score(y, labels) == 1.0


def test_one_lloyd_step_matches_numpy():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(200, 6)).astype(np.float32)
  centres = x[:7].copy()
  weights = np.ones(200, np.float32)
  labels, closest = kmeans._assign(x, np.sum(x * x, 1), centres)  # pylint: disable=protected-access
  distances = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
  np.testing.assert_array_equal(labels, distances.argmin(1))
  np.testing.assert_allclose(closest, distances.min(1), rtol=1e-4, atol=1e-4)
  new = kmeans._update(x, weights, labels, closest, centres)  # pylint: disable=protected-access
  expected = np.stack([x[np.asarray(labels) == k].mean(0) for k in range(7)])
  np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-5)


def test_empty_clusters_take_the_farthest_points():
  x = np.array([[0.], [0.1], [5.], [9.], [20.]], np.float32)
  centres = np.array([[0.], [5.], [100.], [200.]], np.float32)
  labels = np.array([0, 0, 1, 1, 1])  # Clusters 2 and 3 are empty.
  closest = np.array([0., 0.01, 0., 16., 225.], np.float32)
  new = np.asarray(kmeans._update(x, np.ones(5, np.float32), labels,  # pylint: disable=protected-access
                                  closest, centres))
  np.testing.assert_allclose(new[:, 0], [0.05, 34 / 3, 20., 9.], rtol=1e-6)
  # Padding (weight 0) is never a relocation target.
  weights = np.array([1, 1, 1, 1, 0], np.float32)
  new = np.asarray(kmeans._update(x, weights, labels, closest, centres))  # pylint: disable=protected-access
  np.testing.assert_allclose(new[:, 0], [0.05, 7., 9., 0.1], rtol=1e-6)


def test_padding_is_never_a_centre_and_the_result_ignores_it():
  x, _ = _blobs(9, 2, 3, std=0.1)  # 9 points on 8 devices: 7 padding rows.
  labels = kmeans.kmeans(x, 9, seed=0)
  assert sorted(labels) == list(range(9))  # Every point its own cluster.


def test_bad_inputs_are_named():
  with pytest.raises(ValueError, match=r'\(5, 2\) points into 6 clusters'):
    kmeans.kmeans(np.zeros((5, 2)), 6, seed=0)
  with pytest.raises(ValueError, match='num_clusters >= 1, got 0'):
    kmeans.kmeans(np.zeros((5, 2)), 0, seed=0)
  with pytest.raises(ValueError, match='n_init >= 1'):
    kmeans.kmeans(np.zeros((5, 2)), 2, seed=0, n_init=0)
