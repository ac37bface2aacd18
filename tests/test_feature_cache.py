"""data.cached_views: frozen-backbone features of V views computed once, and
heads trained from them (cdcjax/feature_cache.py)."""

import os
import shutil

import jax
import numpy as np
import pytest

from cdcjax import config_validation
from cdcjax import recipes
from cdcjax import data
from cdcjax import feature_cache
from cdcjax import train
from cdcjax.config_validation import ConfigError
from tests.saved_state import latest_saved_state


def _config(views=3):
  c = recipes.digits('tiny')
  c.model.freeze_backbone = True  # A random frozen backbone: enough here.
  c.evaluators = ('cluster_head',)
  c.data.cached_views = views
  c.report.enabled = c.report.tensorboard = False
  return c


def _trainer(config, devices=1):
  source = data.load_digits(8)
  return train.Trainer(config, train.make_mesh(jax.devices()[:devices]),
                       source.images.shape[1:], len(source)), source


def test_a_step_on_cached_features_is_the_step_on_their_images():
  """The heads' update from the cached features of two views equals the
  update of the uncached frozen-backbone step on the images themselves."""
  cached, _ = _trainer(_config(views=2))
  uncached, _ = _trainer(_config(views=0))
  rng = np.random.default_rng(0)
  images = {v: rng.uniform(-1, 1, (64, 8, 8, 1)).astype(np.float32)
            for v in ('view_a', 'view_b')}
  features = jax.jit(feature_cache.make_feature_fn(cached.model))
  assert cached.step_input_shape == (features(cached.state,
                                              images['view_a']).shape[1],)
  batch = {v: np.asarray(features(cached.state, x)) for v, x in images.items()}
  before = jax.device_get(cached.state.batch_stats['backbone'])
  metrics_c = cached.step(batch)
  metrics_u = uncached.step(images)
  np.testing.assert_allclose(float(metrics_c['loss']),
                             float(metrics_u['loss']), rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4,
                                                       atol=1e-6),
               jax.device_get(cached.state.params),
               jax.device_get(uncached.state.params))
  # The frozen backbone's statistics stay as they were, in both.
  jax.tree.map(np.testing.assert_array_equal, before,
               jax.device_get(cached.state.batch_stats['backbone']))
  assert (jax.tree.structure(cached.state.batch_stats) ==
          jax.tree.structure(uncached.state.batch_stats))


def test_cache_holds_the_backbone_features_of_augmented_views(tmp_path):
  trainer, source = _trainer(_config(views=3))
  views = feature_cache.build_or_load(trainer, source, str(tmp_path))
  assert len(views) == 3 and views[0].shape[0] == len(source)
  # Rebuilt by hand for view 2's first pass: its seeded augmentation, then
  # the backbone in inference mode.
  rows = np.arange(feature_cache.IMAGES_PER_PASS)
  rng = np.random.default_rng((trainer.config.seed, 2, 0, 0))
  from cdcjax import augment  # pylint: disable=g-import-not-at-top
  images = data.normalize(np.asarray(
      augment.augment(source.read(rows), rng, trainer.config.aug, view=0),
      np.float32))
  expected = trainer.model.apply(
      {'params': trainer.state.params,
       'batch_stats': trainer.state.batch_stats}, images, train=False)
  np.testing.assert_allclose(views[2][rows], expected['features'], rtol=1e-5,
                             atol=1e-6)
  # Views differ (augmentation), so the pairs the heads see differ.
  assert not np.allclose(views[0], views[1])


def test_cache_on_eight_devices_equals_one_device(tmp_path):
  one, source = _trainer(_config(views=2), devices=1)
  eight, _ = _trainer(_config(views=2), devices=8)
  a = feature_cache.build_or_load(one, source, str(tmp_path / 'one'))
  b = feature_cache.build_or_load(eight, source, str(tmp_path / 'eight'))
  for x, y in zip(a, b):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_interrupted_build_computes_only_the_missing_views(tmp_path):
  trainer, source = _trainer(_config(views=3))
  first = [np.array(v) for v in
           feature_cache.build_or_load(trainer, source, str(tmp_path))]
  directory = feature_cache.cache_dir(str(tmp_path), 0, 1)
  os.remove(directory / 'view_001.npy')
  # A file left half-written by a killed build is never read as a view.
  (directory / 'view_001.npy.partial').write_bytes(b'\0' * 10)
  kept = os.stat(directory / 'view_000.npy').st_mtime_ns
  again = feature_cache.build_or_load(trainer, source, str(tmp_path))
  assert os.stat(directory / 'view_000.npy').st_mtime_ns == kept
  for x, y in zip(first, again):
    np.testing.assert_array_equal(x, y)
  other = _config(views=4)
  with pytest.raises(ValueError, match='num_views.*new --workdir'):
    feature_cache.build_or_load(_trainer(other)[0], source, str(tmp_path))


def test_a_cache_that_does_not_fit_the_disk_is_refused_before_any_work(
    tmp_path, monkeypatch):
  trainer, source = _trainer(_config(views=3))
  real = feature_cache.build_or_load(trainer, source, str(tmp_path / 'real'))
  needed = sum(v.nbytes for v in real)  # What three views take.
  usage = shutil.disk_usage(str(tmp_path))

  def disk_with(free):
    monkeypatch.setattr(feature_cache.shutil, 'disk_usage',
                        lambda _: usage._replace(free=free))

  disk_with(needed)  # Exactly enough: built.
  feature_cache.build_or_load(trainer, source, str(tmp_path / 'fits'))
  disk_with(needed - 1)  # One byte short: refused, nothing written.
  with pytest.raises(ValueError, match=r'needs .* GB .* free; use fewer '
                     r'data.cached_views'):
    feature_cache.build_or_load(trainer, source, str(tmp_path / 'short'))
  directory = feature_cache.cache_dir(str(tmp_path / 'short'), 0, 1)
  assert not list(directory.glob('view_*'))


@pytest.mark.parametrize('process_index', [0, 2])
def test_stream_pairs_two_different_views_of_each_image_once_an_epoch(
    process_index):
  shard_size, num_views, count = 12, 4, 3
  # Feature row = (view, row in the shard): what was drawn is readable.
  views = [np.stack([np.full(shard_size, v), np.arange(shard_size)],
                    1).astype(np.float32) for v in range(num_views)]
  ds = feature_cache.train_dataset(views, batch_size=12, seed=5,
                                   process_index=process_index,
                                   process_count=count)
  batches = [ds[k] for k in range(shard_size // 4)]  # 4 rows per process.
  rows = np.concatenate([b['view_a'][:, 1] for b in batches])
  assert sorted(rows) == list(range(shard_size))  # One epoch: each once.
  for b in batches:
    np.testing.assert_array_equal(b['view_a'][:, 1], b['view_b'][:, 1])
    assert np.all(b['view_a'][:, 0] != b['view_b'][:, 0])
    np.testing.assert_array_equal(
        b['index'], process_index + count * b['view_a'][:, 1].astype(int))
  np.testing.assert_array_equal(ds[1]['view_b'], batches[1]['view_b'])


def test_cached_run_resumes_exactly_without_recomputing(tmp_path):
  config = _config(views=3)
  config.checkpoint_every_steps = 3
  config.total_steps = 6
  one_device = train.make_mesh(jax.devices()[:1])  # Compiles faster.
  straight = str(tmp_path / 'straight')
  train.train_and_evaluate(config, straight, one_device)
  interrupted = str(tmp_path / 'interrupted')
  shutil.copytree(straight, interrupted)
  shutil.rmtree(os.path.join(interrupted, 'checkpoints', '6'))
  view = feature_cache.cache_dir(interrupted, 0, 1) / 'view_000.npy'
  written = os.stat(view).st_mtime_ns
  train.train_and_evaluate(config, interrupted, one_device)
  assert os.stat(view).st_mtime_ns == written
  jax.tree.map(np.testing.assert_array_equal,
               latest_saved_state(straight)[1]['params'],
               latest_saved_state(interrupted)[1]['params'])


@pytest.mark.parametrize('change, message', [
    (dict(views=1), r'data.cached_views=1.*at least 2'),
    (dict(frozen=False), r'data.cached_views=3.*freeze_backbone'),
    (dict(method='selflabel'), r'data.cached_views=3.*self-labeling'),
    (dict(color_on_device=True), r'data.cached_views=3.*color_on_device'),
    (dict(dtype='bfloat16'), r"data.cached_dtype='bfloat16'.*float16"),
])
def test_bad_cache_settings_are_refused(change, message):
  c = _config(views=change.get('views', 3))
  c.model.freeze_backbone = change.get('frozen', True)
  c.method = change.get('method', 'cdc')
  if change.get('color_on_device'):
    c.aug.recipe = 'simclr'
    c.aug.color_on_device = True
  c.data.cached_dtype = change.get('dtype', 'float32')
  with pytest.raises(ConfigError, match=message):
    config_validation.validate(c, 1)


def test_storage_of_imagenet_views():
  # 1,281,167 images x 2,048 floats: 5.25 GB per view in float16.
  assert feature_cache.storage_bytes(1_281_167, 1, 2048, 'float16') == (
      1_281_167 * 2048 * 2)
