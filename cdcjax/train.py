"""The training loop: data-parallel CDC training, evaluation and checkpoints.

One `jax.jit`-compiled step over a 1-D `data` mesh: the batch is sharded over
all devices, parameters and optimiser state are replicated, and the losses see
the global batch (XLA inserts the collectives), so results do not depend on the
device count. This is the modern form of `pmap` with synchronised BatchNorm.
"""

import json
import math
import os
import time
from typing import Any

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from cdcjax import augment
from cdcjax import data as data_lib
from cdcjax import evaluators
from cdcjax import folders
from cdcjax import methods
from cdcjax import optimizers
from cdcjax import metrics as metrics_lib

# Fields that may differ when resuming a run (they do not change what a step
# computes, or they extend the run).
RESUMABLE_CHANGES = ('total_steps', 'num_epochs', 'log_every_steps',
                     'eval_every_steps', 'checkpoint_every_steps',
                     'keep_checkpoints', 'eval_batch_size', 'data.num_threads')


class TrainingFailure(RuntimeError):
  """Training cannot continue (e.g. a non-finite loss)."""


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any


def make_mesh(devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), ('data',), axis_types=(AxisType.Auto,))


def num_train_steps(config, num_examples: int) -> int:
  if config.total_steps > 0:
    return int(config.total_steps)
  return int(config.num_epochs * (num_examples // config.batch_size))


def init_state(model, optimizer, config, image_shape) -> TrainState:
  dummy = jnp.zeros((2,) + tuple(image_shape), jnp.float32)
  variables = model.init(jax.random.key(config.seed), dummy, train=False)
  params = variables['params']
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get('batch_stats', {}),
                    opt_state=optimizer.init(params))


def make_train_step(model, optimizer, config, total_steps: int):
  """Returns train_step(state, batch) -> (state, metrics), not yet jitted."""

  def train_step(state: TrainState, batch):
    def compute_loss(params):
      batch_stats = state.batch_stats
      outputs = []
      # Views go through the network separately (as the PyTorch originals),
      # so BatchNorm statistics are per view.
      for view in ('view_a', 'view_b'):
        out, updates = model.apply(
            {'params': params, 'batch_stats': batch_stats}, batch[view],
            train=True, mutable=['batch_stats'])
        batch_stats = updates['batch_stats']
        outputs.append(out)
      progress = state.step.astype(jnp.float32) / total_steps
      terms = methods.loss(config, *outputs, progress=progress)
      return terms['loss'], (terms, batch_stats)

    grads, (terms, batch_stats) = jax.grad(compute_loss, has_aux=True)(
        state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = TrainState(step=state.step + 1, params=params,
                           batch_stats=batch_stats, opt_state=opt_state)
    return new_state, {**terms, 'grad_norm': optax.global_norm(grads)}

  return train_step


def make_embed_step(model):
  """Network outputs in inference mode (BatchNorm running statistics)."""
  def embed_step(state: TrainState, images):
    return model.apply({'params': state.params,
                        'batch_stats': state.batch_stats}, images, train=False)
  return embed_step


class Trainer:
  """Holds the compiled steps and shardings for one config and mesh."""

  def __init__(self, config, mesh: Mesh, image_shape, num_examples: int,
               bn_groups: int | None = None):
    self.config = config
    self.mesh = mesh
    self.total_steps = num_train_steps(config, num_examples)
    self.last_predictions = None  # Of the latest evaluate().
    if bn_groups is None:  # Per-device statistics: one group per device.
      bn_groups = mesh.size if config.model.batch_norm == 'per_device' else 1
    self.model = methods.make_model(config, bn_groups)
    self.optimizer = optimizers.make_optimizer(config, self.total_steps)
    self.replicated = NamedSharding(mesh, P())
    self.batch_sharding = NamedSharding(mesh, P('data'))
    self.state = jax.jit(
        lambda: init_state(self.model, self.optimizer, config, image_shape),
        out_shardings=self.replicated)()
    self.train_step = jax.jit(
        make_train_step(self.model, self.optimizer, config,
                        self.total_steps),
        in_shardings=(self.replicated, self.batch_sharding),
        out_shardings=(self.replicated, self.replicated), donate_argnums=0)
    self.embed_step = jax.jit(
        make_embed_step(self.model),
        in_shardings=(self.replicated, self.batch_sharding),
        out_shardings=self.replicated)

  def to_global(self, local_batch: dict) -> dict:
    """Global arrays sharded over `data` from this process's rows."""
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(self.batch_sharding,
                                                         x), local_batch)

  def step(self, host_batch: dict) -> dict:
    batch = self.to_global({'view_a': host_batch['view_a'],
                            'view_b': host_batch['view_b']})
    self.state, metrics = self.train_step(self.state, batch)
    return metrics

  def embed(self, source: data_lib.ArraySource) -> dict:
    """Outputs ('features', 'c', 's', 'f' as the method has them) for every
    image of `source`, each exactly once, as host arrays in source order."""
    parts = []
    for batch in data_lib.eval_batches(source, self.config.eval_batch_size,
                                       jax.process_index(),
                                       jax.process_count()):
      images = self.to_global({'image': batch['image']})['image']
      out = jax.device_get(self.embed_step(self.state, images))
      parts.append({k: np.asarray(v)[batch['mask']] for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  def evaluate(self, eval_source: data_lib.ArraySource,
               train_source: data_lib.ArraySource | None = None) -> dict:
    return evaluate(self, eval_source, train_source)


def evaluate(trainer: Trainer, eval_source, train_source=None) -> dict:
  """Runs config.evaluators; the first one's acc / nmi / ari are the record's
  top-level metrics, the others are nested under their names."""
  config = trainer.config
  names = list(config.evaluators)
  embeddings = trainer.embed(eval_source)
  labels = eval_source.labels
  predictions = evaluators.cluster_predictions(
      names[0], embeddings, config.num_clusters, config.seed)
  trainer.last_predictions = predictions  # For the clusters.csv of folders.
  result = {'evaluator': names[0], **metrics_lib.clustering_metrics(
      predictions, labels, config.num_clusters)}
  for name in names[1:]:
    if name in evaluators.CLUSTERING_EVALUATORS:
      extra = evaluators.clustering_result(name, embeddings, labels,
                                           config.num_clusters, config.seed)
      result[name] = {k: extra[k] for k in ('acc', 'nmi', 'ari',
                                            'cluster_size_entropy')
                      if k in extra}
    elif name == 'linear_probe':
      result[name] = _linear_probe(trainer, embeddings, eval_source,
                                   train_source)
    elif name == 'latent_stats':
      result[name] = _latent_stats(trainer, eval_source)
  return result


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
  for _ in range(2):
    augmented = augment.augment(images, rng, config.aug)
    views.append(trainer.embed(data_lib.ArraySource(
        augmented, eval_source.labels[chosen], eval_source.num_classes,
        eval_source.name)))
  return evaluators.latent_stats(views[0], views[1],
                                 eval_source.labels[chosen],
                                 config.loss.temperature)


class MetricsWriter:
  """Appends one JSON object per line to DIR/metrics.jsonl (process 0 only)."""

  def __init__(self, path: str):
    self.path = path
    self.enabled = jax.process_index() == 0

  def write(self, record: dict):
    if self.enabled:
      with open(self.path, 'a') as f:
        f.write(json.dumps(record) + '\n')


def check_workdir_config(config, workdir: str) -> None:
  """Refuses a workdir whose stored config differs in a field that changes
  what training computes; stores the config on a fresh start."""
  path = os.path.join(workdir, 'config.json')
  current = json.loads(config.to_json())
  if os.path.exists(path):
    with open(path) as f:
      stored = json.load(f)
    differing = [k for k in _flat_diff(stored, current)
                 if k not in RESUMABLE_CHANGES]
    if differing:
      raise TrainingFailure(
          f'{workdir} holds a run with a different config (fields: '
          f'{", ".join(differing)}); use a new --workdir or the same config')
  elif jax.process_index() == 0:
    with open(path, 'w') as f:
      f.write(config.to_json(indent=2))


def _flat_diff(a, b, prefix=''):
  keys = set(a) | set(b) if isinstance(a, dict) and isinstance(b, dict) else ()
  if not keys:
    return [] if a == b else [prefix.rstrip('.')]
  out = []
  for k in sorted(keys):
    if k not in a or k not in b:
      out.append(prefix + k)
    else:
      out.extend(_flat_diff(a[k], b[k], f'{prefix}{k}.'))
  return out


def _format_time(seconds: float) -> str:
  seconds = int(seconds)
  return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


def _restore_latest(manager: ocp.CheckpointManager, trainer: Trainer,
                    workdir: str) -> int:
  """Restores the newest complete checkpoint, if any; returns its step."""
  latest = manager.latest_step()
  if latest is None:
    return 0
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, trainer.state)
  trainer.state = manager.restore(latest,
                                  args=ocp.args.StandardRestore(abstract))
  step = int(trainer.state.step)
  logging.info('Resumed from checkpoint at step %d in %s', step, workdir)
  return step


def check_inputs(config) -> None:
  """Fails before any data loading or compilation when an input is missing."""
  if config.data.name == 'tfds':
    from cdcjax import tfds_source  # pylint: disable=g-import-not-at-top
    tfds_source.check_prepared(config.data.tfds_name, config.data.tfds_dir)
    if config.data.class_list and not os.path.exists(config.data.class_list):
      raise FileNotFoundError(f'data.class_list={config.data.class_list!r} '
                              'does not exist')
  elif config.data.name == 'folder':
    if not folders.list_images(config.data.path):
      raise FileNotFoundError(
          f'data.path={config.data.path!r} holds no image file (looked '
          f'recursively for {", ".join(folders.IMAGE_EXTENSIONS)})')
  elif config.data.name != 'digits':
    path = data_lib.npz_path(config.data)
    if not os.path.exists(path):
      raise FileNotFoundError(f'data file {path} for data.name='
                              f'{config.data.name!r} does not exist')
  if config.init_from:
    directory = os.path.join(config.init_from, 'checkpoints')
    converted = os.path.join(config.init_from, 'variables')
    if not os.path.isdir(converted) and (not os.path.isdir(directory) or
                                         not os.listdir(directory)):
      raise TrainingFailure(
          f'config.init_from={config.init_from!r} holds no checkpoints '
          f'(looked in {directory}) and no converted backbone '
          '(python -m cdcjax.convert writes variables/)')


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


def write_clusters(path: str, source, predictions) -> None:
  """CSV of image file and cluster, one row per image."""
  with open(path, 'w') as f:
    f.write('path,cluster\n')
    for name, cluster in zip(source.paths, predictions):
      f.write(f'{json.dumps(name) if "," in name else name},{int(cluster)}\n')


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (or resumes) in `workdir` and returns the final evaluation."""
  source = data_lib.load_source(config.data, config.data.train_split)
  eval_source = source
  if config.data.eval_split != config.data.train_split:
    eval_source = data_lib.load_source(config.data, config.data.eval_split)
  check_labels(config, eval_source)
  os.makedirs(workdir, exist_ok=True)
  check_workdir_config(config, workdir)
  mesh = make_mesh()
  trainer = Trainer(config, mesh, source.read([0]).shape[1:], len(source))
  total_steps = trainer.total_steps
  writer = MetricsWriter(os.path.join(workdir, 'metrics.jsonl'))
  manager = ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, 'checkpoints')),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=config.keep_checkpoints, create=True))

  start_step = _restore_latest(manager, trainer, workdir)
  if start_step == 0 and config.init_from:
    trainer.state = load_weights(config.init_from, trainer.state)
  if start_step >= total_steps:
    logging.info('Run already finished at step %d (total_steps=%d); '
                 'evaluating the final checkpoint only.', start_step,
                 total_steps)
    result = trainer.evaluate(eval_source, source)
    _log_eval(start_step, result)
    manager.close()
    return result

  logging.info('Training %s on %s (%d images) for %d steps, global batch %d, '
               '%d devices.', config.method, source.name, len(source),
               total_steps, config.batch_size, mesh.size)
  dataset = data_lib.train_dataset(source, batch_size=config.batch_size,
                                   seed=config.seed, aug_config=config.aug,
                                   weak_view_a=config.method == 'selflabel',
                                   process_index=jax.process_index(),
                                   process_count=jax.process_count())
  batches = data_lib.train_iterator(dataset, start_step,
                                    num_threads=config.data.num_threads)
  result = None
  interval_start, interval_steps = time.time(), 0
  run_start = time.time()
  for step in range(start_step + 1, total_steps + 1):
    metrics = trainer.step(next(batches))
    interval_steps += 1
    log_now = step % config.log_every_steps == 0 or step == total_steps
    save_now = step % config.checkpoint_every_steps == 0 or step == total_steps
    if log_now or save_now:
      metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
      # Checked before every save, so no checkpoint holds a diverged state.
      if not all(math.isfinite(v) for v in metrics.values()):
        manager.wait_until_finished()
        raise TrainingFailure(
            f'non-finite loss at step {step} ({metrics}); stopped. The last '
            f'good checkpoint is step {manager.latest_step()} in {workdir}')
    if log_now:
      elapsed = time.time() - interval_start
      rate = interval_steps / max(elapsed, 1e-9)
      eta = (total_steps - step) / rate
      terms = ', '.join(f'{k} {v:.4f}' for k, v in metrics.items()
                        if k not in ('loss', 'grad_norm'))
      logging.info('step %d/%d loss %.4f (%s) | %.1f steps/s %.0f img/s | '
                   'elapsed %s ETA %s', step, total_steps, metrics['loss'],
                   terms or '-', rate, rate * config.batch_size,
                   _format_time(time.time() - run_start), _format_time(eta))
      writer.write({'step': step, 'split': 'train', 'steps_per_sec': rate,
                    **metrics})
      interval_start, interval_steps = time.time(), 0
    if save_now:
      manager.save(step, args=ocp.args.StandardSave(trainer.state))
    if step == total_steps or (config.eval_every_steps and
                               step % config.eval_every_steps == 0):
      result = trainer.evaluate(eval_source, source)
      writer.write({'step': step, 'split': 'eval', **result})
      _log_eval(step, result)
      if eval_source.paths is not None and jax.process_index() == 0:
        write_clusters(os.path.join(workdir, 'clusters.csv'), eval_source,
                       trainer.last_predictions)
  manager.wait_until_finished()
  manager.close()
  logging.info('Finished %d steps in %s.', total_steps - start_step,
               _format_time(time.time() - run_start))
  return result


def _log_eval(step: int, result: dict) -> None:
  if 'acc' not in result:  # Unlabelled data.
    logging.info('eval step %d (%s): unlabelled | cluster sizes %s (size '
                 'entropy %.3f)', step, result['evaluator'],
                 result['cluster_sizes'], result['cluster_size_entropy'])
    return
  logging.info('eval step %d (%s): ACC %.4f NMI %.4f ARI %.4f | cluster sizes '
               '%s (size entropy %.3f)', step, result['evaluator'],
               result['acc'], result['nmi'], result['ari'],
               result['cluster_sizes'], result['cluster_size_entropy'])
  for name, extra in result.items():
    if name == 'latent_stats':
      logging.info('eval step %d latent_stats: %s', step,
                   evaluators.format_latent_stats(extra))
    elif isinstance(extra, dict):
      logging.info('eval step %d %s: %s', step, name, ', '.join(
          f'{k} {v:.4f}' if isinstance(v, float) else f'{k} {v}'
          for k, v in extra.items()))


def load_converted_backbone(init_from: str, state: TrainState) -> TrainState:
  """The backbone of a `python -m cdcjax.convert` output directory; strict:
  every backbone variable present with the same shape, nothing extra."""
  from cdcjax import convert  # pylint: disable=g-import-not-at-top
  restored = convert.restore(init_from)['backbone']
  loaded = {'params': restored['params'],
            'batch_stats': restored['batch_stats']}
  expected = {'params': state.params['backbone'],
              'batch_stats': state.batch_stats['backbone']}
  _check_same_tree(loaded, expected, f'{init_from} (converted backbone)')
  cast = lambda new, old: jax.device_put(np.asarray(new, old.dtype),
                                         old.sharding)
  params = dict(state.params)
  params['backbone'] = jax.tree.map(cast, loaded['params'],
                                    expected['params'])
  batch_stats = dict(state.batch_stats)
  batch_stats['backbone'] = jax.tree.map(cast, loaded['batch_stats'],
                                         expected['batch_stats'])
  logging.info('Initialised the backbone from the converted checkpoint in %s',
               init_from)
  return state.replace(params=params, batch_stats=batch_stats)


def load_weights(init_from: str, state: TrainState) -> TrainState:
  """Parameters and BatchNorm statistics from the newest checkpoint of the
  workdir `init_from` (optimiser state and step start fresh), or the backbone
  of a converted PyTorch checkpoint (a directory with variables/). Every
  parameter must be present with the same shape; extra ones are an error."""
  if os.path.isdir(os.path.join(init_from, 'variables')):
    return load_converted_backbone(init_from, state)
  directory = os.path.abspath(os.path.join(init_from, 'checkpoints'))
  manager = ocp.CheckpointManager(directory)
  step = manager.latest_step()
  if step is None:
    raise TrainingFailure(f'config.init_from={init_from!r} holds no '
                          f'checkpoint (looked in {directory})')
  restored = manager.restore(step, args=ocp.args.StandardRestore())
  manager.close()
  loaded = {'params': restored['params'],
            'batch_stats': restored['batch_stats']}
  expected = {'params': state.params, 'batch_stats': state.batch_stats}
  _check_same_tree(loaded, expected, init_from)
  logging.info('Initialised weights from %s (step %d)', init_from, step)
  cast = lambda new, old: jax.device_put(np.asarray(new, old.dtype),
                                         old.sharding)
  return state.replace(
      params=jax.tree.map(cast, loaded['params'], state.params),
      batch_stats=jax.tree.map(cast, loaded['batch_stats'],
                               state.batch_stats))


def _check_same_tree(loaded, expected, source: str) -> None:
  flat_loaded = {jax.tree_util.keystr(k): v for k, v in
                 jax.tree_util.tree_flatten_with_path(loaded)[0]}
  flat_expected = {jax.tree_util.keystr(k): v for k, v in
                   jax.tree_util.tree_flatten_with_path(expected)[0]}
  missing = sorted(set(flat_expected) - set(flat_loaded))
  unexpected = sorted(set(flat_loaded) - set(flat_expected))
  if missing or unexpected:
    raise TrainingFailure(
        f'{source} does not match this model: {len(missing)} missing '
        f'(first: {missing[:3]}), {len(unexpected)} unexpected (first: '
        f'{unexpected[:3]})')
  for key, value in flat_expected.items():
    if tuple(flat_loaded[key].shape) != tuple(value.shape):
      raise TrainingFailure(
          f'{source}: {key} has shape {tuple(flat_loaded[key].shape)}, this '
          f'model needs {tuple(value.shape)}')
