import ml_collections
import numpy as np
import pytest

from cdcjax import config_defaults
from cdcjax import config_validation
from cdcjax import recipes
from cdcjax import augment
from cdcjax import data


@pytest.fixture(scope='module')
def source():
  return data.load_digits(8)


def _aug():
  return config_defaults.base_config().aug


def test_digits_source(source):
  assert source.images.shape == (1797, 8, 8, 1)
  assert source.images.dtype == np.float32
  assert 0.0 <= source.images.min() and source.images.max() <= 1.0
  assert sorted(set(source.labels.tolist())) == list(range(10))


def test_pad_border_frames_the_images_in_black(source):
  padded = data.pad_border(source.images[:4], 2)
  assert padded.shape == (4, 12, 12, 1) and padded.dtype == np.float32
  np.testing.assert_array_equal(padded[:, 2:-2, 2:-2], source.images[:4])
  ring = padded.copy()
  ring[:, 2:-2, 2:-2] = 0
  assert not ring.any()
  assert data.pad_border(source.images, 0) is source.images
  # A negative pad trims: the inverse of padding.
  np.testing.assert_array_equal(data.pad_border(padded, -2), source.images[:4])
  np.testing.assert_array_equal(data.pad_border(source.images[:4], -1),
                                source.images[:4, 1:-1, 1:-1])
  with pytest.raises(ValueError, match=r'pad=-3 would trim 8x8 images to 2x2'):
    data.pad_border(source.images, -3)
  # Padding happens before resizing: the digits keep their pixels, framed.
  framed = data.load_digits(12, pad=2)
  np.testing.assert_allclose(framed.images[:, 2:-2, 2:-2], source.images,
                             atol=1e-6)


def test_resize_bilinear_keeps_constant_images_and_shape():
  images = np.full((2, 8, 8, 1), 0.5, np.float32)
  out = data.resize_bilinear(images, 16)
  assert out.shape == (2, 16, 16, 1)
  np.testing.assert_allclose(out, 0.5, rtol=1e-6)


def test_identity_affine_is_identity(source):
  images = source.images[:16]
  out = augment.random_affine(images, np.random.default_rng(0),
                           max_rotation_deg=0, scale_range=(1, 1),
                           max_shear_deg=0, max_translate=0)
  np.testing.assert_allclose(out, images, atol=1e-6)


def test_one_pixel_translation_moves_the_image():
  images = np.zeros((1, 8, 8, 1), np.float32)
  images[0, 3, 3] = 1.0
  # translate is a fraction of the side: 1/8 of 8 pixels, drawn in [-1, 1].
  rng = np.random.default_rng(0)
  out = augment.random_affine(images, rng, max_rotation_deg=0,
                           scale_range=(1, 1), max_shear_deg=0,
                           max_translate=0.125)
  np.testing.assert_allclose(out.sum(), 1.0, atol=1e-5)  # mass preserved
  assert out[0, 3, 3, 0] < 1.0


def test_training_stream_is_deterministic_for_a_seed(source):
  a = data.train_dataset(source, batch_size=32, seed=7, aug_config=_aug())
  b = data.train_dataset(source, batch_size=32, seed=7, aug_config=_aug())
  c = data.train_dataset(source, batch_size=32, seed=8, aug_config=_aug())
  for step in (0, 3, 100):
    np.testing.assert_array_equal(a[step]['view_a'], b[step]['view_a'])
    np.testing.assert_array_equal(a[step]['index'], b[step]['index'])
  assert not np.array_equal(a[0]['index'], c[0]['index'])
  # The two views of one batch are augmented independently.
  assert not np.allclose(a[0]['view_a'], a[0]['view_b'])


def test_every_epoch_is_a_permutation(source):
  ds = data.train_dataset(source, batch_size=599, seed=0, aug_config=_aug())
  first_epoch = np.concatenate([ds[i]['index'] for i in range(3)])
  assert sorted(first_epoch.tolist()) == list(range(1797))


def test_iterator_resumes_at_a_step(source):
  ds = data.train_dataset(source, batch_size=32, seed=0, aug_config=_aug())
  it = data.train_iterator(ds, start_step=5)
  for step in (5, 6, 7):
    batch = next(it)
    np.testing.assert_array_equal(batch['view_b'], ds[step]['view_b'])


@pytest.mark.parametrize('batch_size', [64, 256, 1797, 2048])
def test_eval_scores_every_image_exactly_once(source, batch_size):
  seen, indices = [], []
  for batch in data.eval_batches(source, batch_size):
    assert batch['image'].shape[0] == batch_size
    seen.append(batch['image'][batch['mask']])
    indices.append(batch['index'][batch['mask']])
  np.testing.assert_array_equal(np.concatenate(seen),
                                data.normalize(source.images))
  np.testing.assert_array_equal(np.concatenate(indices), np.arange(1797))


@pytest.mark.parametrize('processes', [2, 4])
def test_eval_processes_read_disjoint_shards_covering_the_set(source,
                                                              processes):
  batch_size = 256
  global_images = [b['image'] for b in data.eval_batches(source, batch_size)]
  per_process = [list(data.eval_batches(source, batch_size, p, processes))
                 for p in range(processes)]
  read = []
  for step, parts in enumerate(zip(*per_process)):
    # Concatenated in process order, the shards are the global batch.
    np.testing.assert_array_equal(
        np.concatenate([part['image'] for part in parts]), global_images[step])
    for part in parts:
      assert part['image'].shape[0] == batch_size // processes
      read.extend(i for i in part['index'] if i < len(source))
  assert sorted(read) == list(range(len(source)))


def test_training_processes_read_disjoint_shards_of_each_global_batch(source):
  single = data.train_dataset(source, batch_size=64, seed=3, aug_config=_aug())
  shards = [data.train_dataset(source, batch_size=64, seed=3,
                               aug_config=_aug(), process_index=p,
                               process_count=2) for p in range(2)]
  epoch = []
  for step in range(28):  # 28 * 64 = 1792 of the 1797 images: one epoch.
    parts = [shard[step]['index'] for shard in shards]
    assert len(parts[0]) == len(parts[1]) == 32
    np.testing.assert_array_equal(np.concatenate(parts),
                                  single[step]['index'])
    epoch.extend(np.concatenate(parts).tolist())
  assert len(set(epoch)) == len(epoch) == 1792  # No example twice.
  with pytest.raises(ValueError, match='not divisible by the process count'):
    data.train_dataset(source, batch_size=63, seed=0, aug_config=_aug(),
                       process_count=2)


def test_unknown_dataset_is_rejected():
  with pytest.raises(ValueError, match='data.name'):
    data.load_source(ml_collections.ConfigDict({'name': 'nope',
                                                'image_size': 8}))


def test_in_place_normalisation_leaves_the_weak_view_and_source_intact(source):
  """The train views are normalised in place: the weak (un-augmented) view
  must still be the normalised image, and the source must be unchanged."""
  before = source.images.copy()
  ds = data.train_dataset(source, batch_size=32, seed=3, aug_config=_aug(),
                          weak_view_a=True)
  batch = ds[0]
  np.testing.assert_array_equal(batch['view_a'],
                                data.normalize(source.images[batch['index']]))
  assert not np.allclose(batch['view_b'], batch['view_a'])  # Augmented.
  np.testing.assert_array_equal(source.images, before)
  images = np.full((2, 3, 3, 1), 0.25, np.float32)
  assert data.normalize(images, out=images) is images
  np.testing.assert_array_equal(images, -0.5)


def test_balance_classes_cuts_each_class_to_the_smallest(source):
  balanced = data.balance_classes(source)
  counts = np.bincount(balanced.labels)
  smallest = np.bincount(source.labels).min()
  assert set(counts) == {smallest} and len(counts) == 10
  # A fixed subset of the source's own images, in their order, every call.
  again = data.balance_classes(source)
  np.testing.assert_array_equal(balanced.images, again.images)
  rows = [np.flatnonzero((source.images == img).all(axis=(1, 2, 3)))[0]
          for img in balanced.images[:50]]
  assert rows == sorted(rows)
  np.testing.assert_array_equal(source.labels[rows], balanced.labels[:50])
  c = recipes.digits()
  c.data.balance_classes = True
  assert len(data.load_source(c.data)) == 10 * smallest


def test_balance_classes_refuses_unlabelled_and_tfds(source):
  unlabelled = data.ArraySource(images=source.images,
                                labels=np.full(len(source), -1),
                                num_classes=0, name='folder:x')
  with pytest.raises(ValueError, match='not labelled'):
    data.balance_classes(unlabelled)
  c = config_defaults.base_config()
  c.data.name, c.data.tfds_name = 'tfds', 'mnist'
  c.data.balance_classes = True
  with pytest.raises(config_validation.ConfigError,
                     match='data.balance_classes.*array sources'):
    config_validation.validate(c, 1)
