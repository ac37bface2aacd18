"""Frozen-backbone features of V augmented views of every image, computed once.

With `model.freeze_backbone` the backbone's output for an augmented image never
changes during training (inference-mode BatchNorm, no gradient), so
`data.cached_views = V` computes it for V augmented views of every training
image once, stores it in the workdir, and trains the heads on two different
cached views of each image: the training step has no backbone in it.

Layout: DIR/feature_cache/process_P-of-N/view_VVV.npy, one (n_p, D) array per
view, where process P holds the images P, P + N, P + 2N, ... (its shard of
the training split). Each view file is written whole and then renamed, so an
interrupted build resumes at the first missing view. Local files are
memory-mapped; object-store files (gs://) are read into memory.

The stream of training batches is, as the uncached one, a grain MapDataset
whose element `step` is that step's batch (resumable through grain's iterator
state), but each process draws its rows from its own shard: the batches
depend on the process count, and a cached run resumes with the same count (as
every run does, checkpoints.restore_data).
"""

import io
import json
import shutil

from absl import logging
from etils import epath
import grain
import jax
import numpy as np

from cdcjax import augment
from cdcjax import checkpoints
from cdcjax import data as data_lib

CACHE_DIR = 'feature_cache'
CACHED_DTYPES = ('float32', 'float16')
# Images per process in one batch of the cache's backbone pass.
IMAGES_PER_PASS = 256


def shard_indices(num_examples: int, process_index: int,
                  process_count: int) -> np.ndarray:
  """The training images whose features process `process_index` holds."""
  return np.arange(process_index, num_examples, process_count)


def cache_dir(workdir, process_index: int, process_count: int) -> epath.Path:
  return (checkpoints.workdir_path(workdir) / CACHE_DIR /
          f'process_{process_index}-of-{process_count}')


def _view_path(directory: epath.Path, view: int) -> epath.Path:
  return directory / f'view_{view:03d}.npy'


def _write_npy(path: epath.Path, array: np.ndarray) -> None:
  """Writes whole-or-nothing: to a temporary name, then renamed."""
  partial = path.parent / (path.name + '.partial')
  buffer = io.BytesIO()
  np.save(buffer, array)
  partial.write_bytes(buffer.getvalue())
  partial.rename(path)


def _on_object_store(path: epath.Path) -> bool:
  return '://' in str(path)  # gs://, s3://: no memory map, no free space.


def _read_npy(path: epath.Path) -> np.ndarray:
  if _on_object_store(path):
    return np.load(io.BytesIO(path.read_bytes()), allow_pickle=False)
  return np.load(str(path), mmap_mode='r', allow_pickle=False)


def make_feature_fn(model):
  """images -> pooled backbone features, BatchNorm in inference mode (what
  the frozen backbone computes in the training step)."""
  def features(state, images):
    variables = {'params': state.params['backbone'],
                 'batch_stats': state.batch_stats['backbone']}
    return model.backbone.apply(variables, images, False).astype(np.float32)
  return features


def build_or_load(trainer, source, workdir) -> list[np.ndarray]:
  """This process's cached views [V arrays of (n_p, D)]: read from the
  workdir where present, computed with `trainer.state`'s backbone where not."""
  config = trainer.config
  num_views = config.data.cached_views
  index, count = jax.process_index(), jax.process_count()
  directory = cache_dir(workdir, index, count)
  directory.mkdir(parents=True, exist_ok=True)
  mine = shard_indices(len(source), index, count)
  meta = {'num_examples': len(source), 'shard_size': len(mine),
          'num_views': num_views, 'dtype': config.data.cached_dtype}
  meta_path = directory / 'meta.json'
  if meta_path.exists():
    stored = json.loads(meta_path.read_text())
    if stored != meta:
      raise ValueError(
          f'{directory} holds a feature cache of {stored}, this run needs '
          f'{meta}; use a new --workdir')
  else:
    meta_path.write_text(json.dumps(meta))
  missing = [v for v in range(num_views)
             if not _view_path(directory, v).exists()]
  if missing:
    needed = storage_bytes(len(mine), len(missing), _feature_dim(trainer),
                           config.data.cached_dtype)
    _check_free_space(directory, needed)
    logging.info('Feature cache: computing %d of %d views of %d images '
                 '(this process, %.3g GB) in %s', len(missing), num_views,
                 len(mine), needed / 1e9, directory)
    compute = _cache_pass(trainer, len(source))
    for view in missing:
      features = compute(source, mine, view)
      _write_npy(_view_path(directory, view),
                 features.astype(config.data.cached_dtype))
      logging.info('Feature cache: view %d of %d written.', view + 1,
                   num_views)
  else:
    logging.info('Feature cache: reading %d views from %s', num_views,
                 directory)
  views = [_read_npy(_view_path(directory, v)) for v in range(num_views)]
  for view, array in enumerate(views):
    if array.shape[0] != len(mine):
      raise ValueError(f'{_view_path(directory, view)} has {array.shape[0]} '
                       f'rows, this process holds {len(mine)} images; use a '
                       'new --workdir')
  return views


def _feature_dim(trainer) -> int:
  """The backbone's output width, from shapes alone (nothing computed)."""
  image = jax.ShapeDtypeStruct((1,) + tuple(trainer.image_shape), np.float32)
  out = jax.eval_shape(make_feature_fn(trainer.model), trainer.state, image)
  return out.shape[-1]


def _check_free_space(directory: epath.Path, needed: int) -> None:
  """Refuses a cache that cannot fit on a local disk before computing any of
  it (object stores are not checked: they report no free space)."""
  if _on_object_store(directory):
    return
  free = shutil.disk_usage(str(directory)).free
  if needed > free:
    raise ValueError(
        f'the feature cache needs {needed / 1e9:.3g} GB in {directory}, '
        f'which has {free / 1e9:.3g} GB free; use fewer data.cached_views, '
        "data.cached_dtype='float16', or a --workdir on a larger disk")


def _cache_pass(trainer, num_examples: int):
  """Returns compute(source, indices, view) -> (len(indices), D) features of
  augmented view `view` of this process's images, computed on the mesh
  (every process runs the same number of passes: the largest shard's)."""
  config = trainer.config
  count = jax.process_count()
  local_devices = max(1, trainer.mesh.size // count)
  per_pass = -(-IMAGES_PER_PASS // local_devices) * local_devices
  largest_shard = -(-num_examples // count)
  passes = -(-largest_shard // per_pass)
  feature_fn = jax.jit(make_feature_fn(trainer.model),
                       in_shardings=(trainer.replicated,
                                     trainer.batch_sharding),
                       out_shardings=trainer.replicated)

  def compute(source, indices, view):
    out = []
    for k in range(passes):
      rows = indices[k * per_pass:(k + 1) * per_pass]
      rng = np.random.default_rng(
          (config.seed, view, jax.process_index(), k))
      images = (augment.augment(source.read(rows), rng, config.aug,
                                view=view % 2) if len(rows) else None)
      shape = (per_pass,) + tuple(trainer.image_shape)
      batch = np.zeros(shape, np.float32)
      if images is not None:
        batch[:len(rows)] = data_lib.normalize(np.asarray(images, np.float32))
      images = trainer.to_global({'image': batch})['image']
      features = np.asarray(jax.device_get(feature_fn(trainer.state, images)))
      start = jax.process_index() * per_pass
      out.append(features[start:start + len(rows)])
    return np.concatenate(out)

  return compute


def train_dataset(views: list[np.ndarray], *, batch_size: int, seed: int,
                  process_index: int = 0,
                  process_count: int = 1) -> grain.MapDataset:
  """Infinite MapDataset of this process's rows of each global batch:
  'view_a' and 'view_b' are two different cached views (drawn uniformly) of
  each image of a per-epoch shuffle of this process's shard."""
  if batch_size % process_count:
    raise ValueError(f'batch_size={batch_size} is not divisible by the '
                     f'process count {process_count}')
  per_process = batch_size // process_count
  shard = len(views[0])
  global_index = process_index + process_count * np.arange(shard)
  num_views = len(views)
  ds = grain.MapDataset.range(shard).seed(seed).shuffle().repeat()
  ds = ds.batch(per_process, drop_remainder=True)

  def two_views(rows, rng):
    rows = np.asarray(rows)
    first = rng.integers(num_views, size=len(rows))
    second = (first + rng.integers(1, num_views, size=len(rows))) % num_views
    out = {}
    for name, chosen in (('view_a', first), ('view_b', second)):
      feats = np.empty((len(rows), views[0].shape[1]), np.float32)
      for v in np.unique(chosen):
        where = chosen == v
        feats[where] = views[v][rows[where]]
      out[name] = feats
    out['index'] = global_index[rows]
    return out

  return ds.random_map(two_views)


def storage_bytes(num_images: int, num_views: int, feature_dim: int,
                  dtype: str) -> int:
  """Bytes of a cache (checked against the free disk before a build; the
  ImageNet figure in configs/imagenet_cdc.py)."""
  return num_images * num_views * feature_dim * np.dtype(dtype).itemsize
