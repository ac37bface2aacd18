"""Evaluators on hand-made embeddings, and the .npz source."""

import io

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from cdcjax import data
from cdcjax import evaluators


def _blobs(n_per_class=30, k=3, dim=5, seed=0):
  rng = np.random.default_rng(seed)
  centres = 10 * np.eye(k, dim)
  labels = np.repeat(np.arange(k), n_per_class)
  return centres[labels] + rng.normal(size=(len(labels), dim)), labels


def test_kmeans_evaluators_find_separated_clusters():
  x, labels = _blobs()
  emb = {'features': x, 's': x}
  for name in ('kmeans_features', 'kmeans_head'):
    result = evaluators.clustering_result(name, emb, labels, 3, seed=0)
    assert result['acc'] == 1.0
  # CD's feature predictions are used as they are.
  assert evaluators.head_embedding({'s': x, 'f': x[:, :2]}).shape == (90, 2)


def test_cluster_head_is_argmax():
  c = np.array([[0.1, 2.0], [3.0, 0.0], [0.0, 1.0]])
  result = evaluators.clustering_result('cluster_head', {'c': c},
                                        np.array([1, 0, 1]), 2, seed=0)
  assert result['acc'] == 1.0 and result['cluster_sizes'] == [1, 2]


def test_linear_probe_separable_and_chance():
  x, labels = _blobs(seed=1)
  out = evaluators.linear_probe(x[::2], labels[::2], x[1::2], labels[1::2])
  assert out['acc'] == 1.0 and out['num_train'] == 45
  noise = np.random.default_rng(2).normal(size=x.shape)
  out = evaluators.linear_probe(noise[::2], labels[::2], noise[1::2],
                                labels[1::2])
  assert out['acc'] < 0.7


def test_latent_stats_against_direct_computation():
  rng = np.random.default_rng(3)
  labels = np.array([0, 0, 1, 1, 2])
  a = {'c': rng.normal(size=(5, 3)), 's': rng.normal(size=(5, 4))}
  b = {'c': rng.normal(size=(5, 3)), 's': rng.normal(size=(5, 4))}
  stats = evaluators.latent_stats(a, b, labels, temperature=0.5)
  unit = lambda v: v / np.linalg.norm(v)
  augmented = [unit(a['c'][i]) @ unit(b['c'][i]) for i in range(5)]
  same = [unit(a['c'][i]) @ unit(a['c'][j]) for i in range(5)
          for j in range(5) if i != j and labels[i] == labels[j]]
  different = [unit(a['s'][i]) @ unit(a['s'][j]) for i in range(5)
               for j in range(5) if labels[i] != labels[j]]
  weights = [np.exp((unit(a['c'][i]) @ unit(a['c'][j]) - augmented[i]) / 0.5)
             for i in range(5) for j in range(5) if labels[i] != labels[j]]
  np.testing.assert_allclose(stats['c_augmented'],
                             [np.mean(augmented), np.std(augmented)])
  np.testing.assert_allclose(stats['c_same_class'], [np.mean(same),
                                                     np.std(same)])
  np.testing.assert_allclose(stats['s_different_class'],
                             [np.mean(different), np.std(different)])
  np.testing.assert_allclose(stats['w_different_class'],
                             [np.mean(weights), np.std(weights)])
  assert 'c: augmented' in evaluators.format_latent_stats(stats)


@pytest.mark.parametrize('names,has_head,method,message', [
    (('nope',), True, 'cdc', "'nope'"),
    (('linear_probe',), True, 'cdc', 'must cluster'),
    (('cluster_head',), False, 'simclr', 'no cluster head'),
    (('kmeans_features', 'cluster_head_merged'), False, 'cd',
     "'cluster_head_merged' but method 'cd' has no cluster head"),
    (('kmeans_features', 'latent_stats'), False, 'cd', 'cdc only'),
])
def test_bad_evaluator_choices(names, has_head, method, message):
  with pytest.raises(ValueError, match=message):
    evaluators.check_evaluators(names, has_head, method)


def _write_npz(path, encoding):
  # Smooth images, which JPEG keeps within a few grey levels.
  ramp = np.linspace(0, 1, 8)[None, :, None, None] * np.linspace(
      0.5, 1, 8)[None, None, :, None]
  images = (200 * ramp * np.linspace(0.3, 1, 6)[:, None, None, None] *
            np.ones(3)).astype(np.uint8)
  arrays = {'labels': np.array([0, 1, 2, 0, 1, 2]),
            'split': np.array([0, 0, 0, 0, 1, 1], np.int8),
            'classes': np.array(['a', 'b', 'c'])}
  if encoding == 'images':
    arrays['images'] = images
  else:
    blobs = []
    for image in images:
      buffer = io.BytesIO()
      Image.fromarray(image).save(buffer, format='JPEG', quality=95)
      blobs.append(np.frombuffer(buffer.getvalue(), np.uint8))
    arrays['jpeg'] = np.concatenate(blobs)
    arrays['offsets'] = np.cumsum([0] + [len(b) for b in blobs])
  np.savez(path, **arrays)
  return images


@pytest.mark.parametrize('encoding', ['images', 'jpeg'])
def test_npz_source_both_encodings_and_splits(tmp_path, encoding):
  path = str(tmp_path / 'mine.npz')
  images = _write_npz(path, encoding)
  train = data.load_npz(path, 'train')
  test = data.load_npz(path, 'test')
  assert len(train) == 4 and len(test) == 2 and train.num_classes == 3
  assert train.name == 'mine:train'
  np.testing.assert_array_equal(test.labels, [1, 2])
  error = np.abs(train.images.astype(int) - images[:4]).mean()
  assert error == 0 if encoding == 'images' else error < 4  # JPEG is lossy.
  item = train[0]['image']
  assert item.dtype == np.float32 and 0 <= item.min() and item.max() <= 1
  resized = data.load_npz(path, 'all', image_size=4)
  assert resized.images.shape == (6, 4, 4, 3)
  padded = data.load_npz(path, 'test', pad=1)
  assert padded.images.shape == (2, 10, 10, 3)
  np.testing.assert_array_equal(padded.images[:, 1:-1, 1:-1], test.images)
  assert padded.images[:, 0].max() == 0 and padded.images[:, :, -1].max() == 0
  # Pad, then resize: a 1-pixel border around 8 pixels keeps 4/5 of the side.
  framed = data.load_npz(path, 'all', image_size=5, pad=1)
  assert framed.images.shape == (6, 5, 5, 3)
  assert framed.images[:, 0].max() < resized.images[:, 0].max()
  # A negative pad trims before resizing: the 6x6 centre, then resized.
  trimmed = data.load_npz(path, 'test', pad=-1)
  np.testing.assert_array_equal(trimmed.images, test.images[:, 1:-1, 1:-1])
  trimmed = data.load_npz(path, 'all', image_size=3, pad=-1)
  centre = data.load_npz(path, 'all', pad=-1).images
  expected = np.round(255 * data.resize_bilinear(data.to_float(centre), 3))
  np.testing.assert_array_equal(trimmed.images, expected.astype(np.uint8))
  assert not np.array_equal(trimmed.images,
                            data.load_npz(path, 'all', image_size=3).images)


def test_npz_source_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='does not exist'):
    data.load_npz(str(tmp_path / 'missing.npz'))
  path = str(tmp_path / 'mine.npz')
  _write_npz(path, 'images')
  with pytest.raises(ValueError, match='split'):
    data.load_npz(path, 'validation')


def test_init_from_weights_must_match_the_model():
  from cdcjax import checkpoints  # pylint: disable=g-import-not-at-top
  check = checkpoints.check_same_tree
  expected = {'params': {'a': np.zeros((2, 3)), 'b': np.zeros(4)}}
  check({'params': {'a': np.ones((2, 3)), 'b': np.ones(4)}}, expected,
        'run')  # Same names and shapes: accepted.
  with pytest.raises(checkpoints.TrainingFailure, match=r"1 missing .*'b'"):
    check({'params': {'a': np.ones((2, 3))}}, expected, 'run')
  with pytest.raises(checkpoints.TrainingFailure, match=r"1 unexpected .*'c'"):
    check({'params': {'a': np.ones((2, 3)), 'b': np.ones(4), 'c': np.ones(1)}},
          expected, 'run')
  with pytest.raises(checkpoints.TrainingFailure, match=r'\(2, 2\).*\(2, 3\)'):
    check({'params': {'a': np.ones((2, 2)), 'b': np.ones(4)}}, expected, 'run')


def _split_class_posteriors(seed=0, classes=3, per_class=40):
  """Posteriors of a head with 2 clusters per class (2 * classes in all):
  each image leans to its own half of its class and, less, to the other
  half, with noise; returns (probabilities, labels)."""
  rng = np.random.default_rng(seed)
  labels = np.repeat(np.arange(classes), per_class)
  half = rng.integers(0, 2, size=len(labels))
  logits = rng.normal(scale=0.3, size=(len(labels), 2 * classes))
  logits[np.arange(len(labels)), 2 * labels + half] += 3.0
  logits[np.arange(len(labels)), 2 * labels + 1 - half] += 2.0
  probabilities = np.exp(logits)
  return probabilities / probabilities.sum(1, keepdims=True), labels


def _upgma_cosine_reference(columns, num_groups):
  """Average-linkage (UPGMA) agglomeration written out: repeatedly join the
  two groups with the smallest mean pairwise cosine distance."""
  unit = columns / np.linalg.norm(columns, axis=1, keepdims=True)
  distance = 1.0 - unit @ unit.T
  groups = [[i] for i in range(len(columns))]
  while len(groups) > num_groups:
    pairs = [(np.mean([distance[i, j] for i in a for j in b]), x, y)
             for x, a in enumerate(groups) for y, b in enumerate(groups)
             if x < y]
    _, x, y = min(pairs)
    groups[x] = groups[x] + groups.pop(y)
  group_of = np.zeros(len(columns), np.int64)
  for g, members in enumerate(groups):
    group_of[members] = g
  return group_of


def test_merge_clusters_joins_the_halves_of_split_classes():
  probabilities, labels = _split_class_posteriors()
  merged = evaluators.merge_clusters(probabilities, 3)
  assert len(np.unique(np.argmax(probabilities, 1))) == 6
  result = evaluators.clustering_result(
      'cluster_head_merged', {'c': probabilities,
                              'cluster_probs': probabilities}, labels, 3, 0)
  assert result['acc'] == 1.0 and len(result['cluster_sizes']) == 3
  np.testing.assert_array_equal(
      merged, evaluators.cluster_predictions(
          'cluster_head_merged', {'c': probabilities,
                                  'cluster_probs': probabilities}, 3, 0))


@pytest.mark.parametrize('seed', [1, 2, 3])
def test_merge_clusters_matches_written_out_average_linkage(seed):
  rng = np.random.default_rng(seed)
  logits = rng.normal(scale=2.0, size=(200, 9))
  probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  argmax = probabilities.argmax(1)
  used = np.unique(argmax)
  expected = _upgma_cosine_reference(probabilities[:, used].T, 4)
  lut = np.zeros(9, np.int64)
  lut[used] = expected
  merged = evaluators.merge_clusters(probabilities, 4)
  # The same partition of the images (group numbers may differ).
  assert len(np.unique(merged)) == 4
  assert adjusted_rand_score(merged, lut[argmax]) == 1.0


def test_merge_clusters_properties():
  probabilities, _ = _split_class_posteriors(seed=4)
  merged = evaluators.merge_clusters(probabilities, 3)
  # Relabelling the head's clusters does not change the partition.
  order = np.random.default_rng(0).permutation(probabilities.shape[1])
  permuted = evaluators.merge_clusters(probabilities[:, order], 3)
  assert adjusted_rand_score(merged, permuted) == 1.0
  # Asking for as many groups as non-empty clusters changes nothing.
  np.testing.assert_array_equal(evaluators.merge_clusters(probabilities, 6),
                                probabilities.argmax(1))
  # Every image of a cluster lands in the same group.
  argmax = probabilities.argmax(1)
  for k in np.unique(argmax):
    assert len(np.unique(merged[argmax == k])) == 1
  with pytest.raises(ValueError, match='num_groups >= 1'):
    evaluators.merge_clusters(probabilities, 0)


def test_output_clusters():
  assert evaluators.output_clusters('cluster_head', 20, 10) == 20
  for name in ('cluster_head_merged', 'kmeans_features', 'kmeans_head'):
    assert evaluators.output_clusters(name, 20, 10) == 10
    assert evaluators.output_clusters(name, 20, 0) == 20
