"""The training loop: data-parallel CDC training, evaluation and checkpoints.

One `jax.jit`-compiled step over a 1-D `data` mesh: the batch is sharded over
all devices, parameters and optimiser state are replicated, and the losses see
the global batch (XLA inserts the collectives), so results do not depend on the
device count. This is the modern form of `pmap` with synchronised BatchNorm.
"""

import itertools
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
from cdcjax import augment_jax
from cdcjax import checkpoints
from cdcjax import data as data_lib
from cdcjax import evaluation
from cdcjax import feature_cache
from cdcjax import folders
from cdcjax import methods
from cdcjax import optimizers
from cdcjax import preemption
from cdcjax import report
from cdcjax import summaries
from cdcjax import workdir as workdir_lib
from cdcjax.errors import (NON_FINITE_GRAD_NORM_AT_STEP,
                           NON_FINITE_LOSS_AT_STEP, TrainingFailure)


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  # The momentum (EMA) copy of params for loss.contrast='moco_v3', else None.
  ema_params: Any = None
  # With model.num_cluster_heads > 1: each head's loss, exponentially
  # averaged over steps; the lowest one's head predicts. Else None.
  head_losses: Any = None


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
                    opt_state=optimizer.init(params),
                    ema_params=(jax.tree.map(jnp.copy, params)
                                if methods.uses_momentum_heads(config)
                                else None),
                    head_losses=(jnp.zeros((config.model.num_cluster_heads,))
                                 if config.model.num_cluster_heads > 1
                                 else None))


# Decay of the per-head loss average: about the last 100 steps count.
HEAD_LOSS_DECAY = 0.99
LOSS_SCOPE, OPTIMIZER_SCOPE = 'cdcjax_loss', 'cdcjax_optimizer'


def make_train_step(model, optimizer, config, total_steps: int,
                    mesh: Mesh | None = None):
  """Returns train_step(state, batch) -> (state, metrics), not yet jitted.

  mesh: the mesh the batch is sharded over, given to the loss (per-shard
  instance contrasts, losses.info_nce); None leaves them to the compiler.
  """

  # With data.cached_views the batch holds the frozen backbone's features of
  # the views (cdcjax.feature_cache), and only the heads run.
  from_features = config.data.cached_views > 0

  def train_step(state: TrainState, batch):
    if config.aug.color_on_device:
      batch = augment_jax.device_views(
          batch, jax.random.fold_in(jax.random.key(config.seed), state.step),
          config.aug, weak_view_a=config.method == 'selflabel')

    progress = state.step.astype(jnp.float32) / total_steps
    ema_params, momentum_outputs = state.ema_params, None
    if methods.uses_momentum_heads(config):
      # MoCo v3: update the momentum copy from the current parameters, then
      # compute the keys with it (train-mode BatchNorm, statistics dropped).
      m = methods.momentum(config, progress)
      ema_params = jax.tree.map(lambda e, p: m * e + (1 - m) * p,
                                state.ema_params, state.params)
      momentum_outputs = [jax.lax.stop_gradient(model.apply(
          {'params': ema_params, 'batch_stats': state.batch_stats},
          batch[view], train=True, from_features=from_features,
          mutable=['batch_stats'])[0])
                          for view in ('view_a', 'view_b')]

    def compute_loss(params):
      batch_stats = state.batch_stats
      outputs = []
      # Views go through the network separately (as the PyTorch originals),
      # so BatchNorm statistics are per view.
      for view in ('view_a', 'view_b'):
        out, updates = model.apply(
            {'params': params, 'batch_stats': batch_stats}, batch[view],
            train=True, from_features=from_features, mutable=['batch_stats'])
        batch_stats = updates['batch_stats']
        outputs.append(out)
      # Named scopes let tests find these ops in the jaxpr and check that
      # only float32 reaches them under mixed precision.
      with jax.named_scope(LOSS_SCOPE):
        terms = methods.loss(config, *outputs, progress=progress,
                             momentum_outputs=momentum_outputs, mesh=mesh)
      return terms['loss'], (terms, batch_stats)

    grads, (terms, batch_stats) = jax.grad(compute_loss, has_aux=True)(
        state.params)
    with jax.named_scope(OPTIMIZER_SCOPE):
      updates, opt_state = optimizer.update(grads, state.opt_state,
                                            state.params)
      params = optax.apply_updates(state.params, updates)
    head_losses = state.head_losses
    if head_losses is not None:
      current = terms.pop('head_losses')
      head_losses = jnp.where(
          state.step == 0, current,
          HEAD_LOSS_DECAY * head_losses + (1 - HEAD_LOSS_DECAY) * current)
      terms['selected_head'] = methods.selected_head(head_losses).astype(
          jnp.float32)
    new_state = TrainState(step=state.step + 1, params=params,
                           batch_stats=batch_stats, opt_state=opt_state,
                           ema_params=ema_params, head_losses=head_losses)
    return new_state, {**terms, 'grad_norm': optax.global_norm(grads)}

  return train_step


def make_embed_step(model):
  """Network outputs in inference mode (BatchNorm running statistics);
  with several cluster heads, 'c' is the selected head's."""
  def embed_step(state: TrainState, images):
    out = model.apply({'params': state.params,
                       'batch_stats': state.batch_stats}, images, train=False)
    if state.head_losses is not None:
      out['c'] = jnp.take(out['c_heads'],
                          methods.selected_head(state.head_losses), axis=1)
    return out
  return embed_step


_barrier_ids = itertools.count()


def sync_processes(name: str, timeout_s: int = 1800) -> None:
  """Waits until every process reaches this point (no-op with one process).

  A barrier of the coordination service, not a collective: a collective's
  first use on CPU (gloo) gives up after 30 s, too little when one process
  compiles for longer than another on a loaded machine.
  """
  if jax.process_count() > 1:  # Every process makes the same calls in order.
    ocp.multihost.get_barrier_sync_fn()(
        key=f'cdcjax_{name}_{next(_barrier_ids)}', timeout_ms=timeout_s * 1000)


class Trainer:
  """Holds the compiled steps and shardings for one config and mesh.

  abstract=True builds no array: `state` holds jax.ShapeDtypeStructs with
  their shardings, so the steps can be lowered and compiled for devices this
  process cannot run on (cdcjax.aot: a TPU slice's topology on a CPU).
  """

  def __init__(self, config, mesh: Mesh, image_shape, num_examples: int,
               bn_groups: int | None = None, abstract: bool = False):
    self.config = config
    self.mesh = mesh
    self.image_shape = tuple(image_shape)
    # Evaluation batches are padded up to a multiple of the device count
    # (padding rows are masked out), so eval_batch_size suits any mesh.
    self.eval_batch_size = -(-config.eval_batch_size // mesh.size) * mesh.size
    self.total_steps = num_train_steps(config, num_examples)
    self.last_predictions = None  # Of the latest evaluate().
    self._executables = {}
    if bn_groups is None:  # Per-device statistics: one group per device.
      bn_groups = mesh.size if config.model.batch_norm == 'per_device' else 1
    self.model = methods.make_model(config, bn_groups)
    self.optimizer = optimizers.make_optimizer(config, self.total_steps)
    self.replicated = NamedSharding(mesh, P())
    self.batch_sharding = NamedSharding(mesh, P('data'))
    initial_state = jax.jit(
        lambda: init_state(self.model, self.optimizer, config, image_shape),
        out_shardings=self.replicated)
    if abstract:
      self.state = jax.tree.map(
          lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                         sharding=self.replicated),
          jax.eval_shape(initial_state))
    else:
      self.state = initial_state()
    # What one row of a training batch is: an image, or with
    # data.cached_views the frozen backbone's features of one.
    self.step_input_shape = self.image_shape
    if config.data.cached_views:
      self.step_input_shape = jax.eval_shape(
          feature_cache.make_feature_fn(self.model), self.state,
          jax.ShapeDtypeStruct((1,) + self.image_shape, jnp.float32)
      ).shape[1:]
    self.train_step = jax.jit(
        make_train_step(self.model, self.optimizer, config,
                        self.total_steps,
                        mesh if config.loss.sharded_contrast else None),
        in_shardings=(self.replicated, self.batch_sharding),
        out_shardings=(self.replicated, self.replicated), donate_argnums=0)
    self.embed_step = jax.jit(
        make_embed_step(self.model),
        in_shardings=(self.replicated, self.batch_sharding),
        out_shardings=self.replicated)

  def _compiled(self, name: str, jitted, *args):
    """`jitted` compiled ahead of time for the shapes of `args`; processes
    wait for each other after compiling, so none starts the step's
    collectives while another is still compiling."""
    key = (name,) + tuple(
        (x.shape, x.dtype) for x in jax.tree.leaves(args[1:]))
    if key not in self._executables:
      self._executables[key] = jitted.lower(*args).compile()
      sync_processes(f'compiled_{name}')
    return self._executables[key]

  def to_global(self, local_batch: dict) -> dict:
    """Global arrays sharded over `data` from this process's rows."""
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(self.batch_sharding,
                                                         x), local_batch)

  def step(self, host_batch: dict) -> dict:
    batch = self.to_global({'view_a': host_batch['view_a'],
                            'view_b': host_batch['view_b']})
    train_step = self._compiled('train_step', self.train_step, self.state,
                                batch)
    self.state, metrics = train_step(self.state, batch)
    return metrics

  def embed(self, source: data_lib.ArraySource) -> dict:
    """Outputs ('features', 'c', 's', 'f' as the method has them) for every
    image of `source`, each exactly once, as host arrays in source order."""
    parts = []
    for batch in data_lib.eval_batches(source, self.eval_batch_size,
                                       jax.process_index(),
                                       jax.process_count()):
      images = batch['image']
      if self.config.aug.output_size:  # The evaluation transform: resize.
        images = augment.resize(images, self.config.aug.output_size)
      images = self.to_global({'image': images})['image']
      embed_step = self._compiled('embed_step', self.embed_step, self.state,
                                  images)
      out = jax.device_get(embed_step(self.state, images))
      parts.append({k: np.asarray(v)[batch['mask']] for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  def evaluate(self, eval_source: data_lib.ArraySource,
               train_source: data_lib.ArraySource | None = None) -> dict:
    return evaluation.evaluate(self, eval_source, train_source)

  def abstract_batches(self) -> tuple[dict, jax.ShapeDtypeStruct]:
    """Shapes, dtypes and shardings of a global training batch and of an
    evaluation batch of images, as `step` and `embed` feed them."""
    rows = lambda n, shape: jax.ShapeDtypeStruct(
        (n, *shape), jnp.float32, sharding=self.batch_sharding)
    view = rows(self.config.batch_size, self.step_input_shape)
    return ({'view_a': view, 'view_b': view},
            rows(self.eval_batch_size, self.image_shape))


def _format_time(seconds: float) -> str:
  seconds = int(seconds)
  return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


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


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       mesh: Mesh | None = None) -> dict:
  """Trains (or resumes) in `workdir` (a local or gs:// path) on `mesh`
  (default: all devices) and returns the final evaluation."""
  source = data_lib.load_source(config.data, config.data.train_split)
  eval_source = source
  if config.data.eval_split != config.data.train_split:
    eval_source = data_lib.load_source(config.data, config.data.eval_split)
  evaluation.check_labels(config, eval_source)
  checkpoints.workdir_path(workdir).mkdir(parents=True, exist_ok=True)
  workdir_lib.check_workdir_config(config, workdir)
  mesh = make_mesh() if mesh is None else mesh
  trainer = Trainer(config, mesh, image_shape_of(config, source), len(source))
  total_steps = trainer.total_steps
  writer = workdir_lib.MetricsWriter(
      checkpoints.workdir_path(workdir) / 'metrics.jsonl')
  events = summaries.EventWriter(workdir, config.report.tensorboard)
  manager = checkpoints.open_manager(workdir, config.keep_checkpoints,
                                     config.keep_checkpoint_every_steps)
  trainer.state, start_step = checkpoints.restore_latest(manager,
                                                         trainer.state, None)
  if start_step == 0 and config.init_from:
    trainer.state = checkpoints.load_weights(
        config.init_from, trainer.state, tuple(config.get('init_fresh', ())),
        tuple(config.get('init_skip', ())))
    if trainer.state.ema_params is not None:  # The momentum copy starts equal.
      trainer.state = trainer.state.replace(
          ema_params=jax.tree.map(jnp.copy, trainer.state.params))
  # A finished run is only evaluated: its input stream is not needed (and
  # may come from another process count).
  if start_step >= total_steps:
    logging.info('Run already finished at step %d (total_steps=%d); '
                 'evaluating the final checkpoint only.', start_step,
                 total_steps)
    result = trainer.evaluate(eval_source, source)
    evaluation.log_eval(start_step, result)
    manager.close()
    _write_assignments(trainer, eval_source, result, workdir)
    report.write_run_report(trainer, eval_source, result, workdir, start_step)
    return result
  batches = _train_batches(config, trainer, source, workdir)
  if start_step:  # The input stream continues where the checkpoint left it.
    checkpoints.restore_data(manager, start_step, batches)

  logging.info('Training %s on %s (%d images) for %d steps, global batch %d, '
               '%d devices.', config.method, source.name, len(source),
               total_steps, config.batch_size, mesh.size)
  with preemption.StopRequests() as stop_requests:
    result = _train_loop(config, trainer, manager, batches, start_step,
                         eval_source, source, workdir, writer, events,
                         stop_requests)
  checkpoints.wait_for_save(manager)
  manager.close()
  events.close()
  report.write_run_report(trainer, eval_source, result, workdir, total_steps)
  return result


def _train_loop(config, trainer, manager, batches, start_step, eval_source,
                source, workdir, writer, events, stop_requests):
  """Steps from start_step + 1 to the end (logging, checkpoints, evaluation);
  returns the final evaluation, or raises preemption.Preempted after saving
  the step at which a stop was requested."""
  total_steps = trainer.total_steps
  result = None
  interval_start, interval_steps = time.time(), 0
  run_start = time.time()
  for step in range(start_step + 1, total_steps + 1):
    metrics = trainer.step(next(batches))
    interval_steps += 1
    stopping = stop_requests.requested(manager, step)
    log_now = (step % config.log_every_steps == 0 or step == total_steps or
               stopping)
    save_now = (step % config.checkpoint_every_steps == 0 or
                step == total_steps or stopping)
    if log_now or save_now:
      metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
      # Checked before every save, so no checkpoint holds a diverged state.
      # A finite loss with a non-finite gradient (a NaN from a loss's edge)
      # would make the next parameters NaN: stopped the same way.
      bad = [k for k, v in metrics.items() if not math.isfinite(v)]
      if bad:
        what = (NON_FINITE_LOSS_AT_STEP if 'loss' in bad else
                NON_FINITE_GRAD_NORM_AT_STEP if 'grad_norm' in bad else
                f'non-finite {", ".join(bad)} at step')
        manager.wait_until_finished()
        good = manager.latest_step()
        kept = (f'The last good checkpoint is step {good} in {workdir}'
                if good is not None else
                f'No checkpoint had been saved yet in {workdir} (every '
                f'{config.checkpoint_every_steps} steps)')
        raise TrainingFailure(
            f'{what} {step} ({metrics}); stopped. '
            f'{kept}')
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
      events.scalars(step, 'train', {'steps_per_sec': rate, **metrics})
      interval_start, interval_steps = time.time(), 0
    if save_now:
      checkpoints.save(manager, step, trainer.state, batches)
    if stopping:
      checkpoints.wait_for_save(manager)
      sync_processes('stopped')  # No process exits before the save is whole.
      writer.write({'step': step, 'split': 'stopped',
                    'reason': stop_requests.reason})
      raise preemption.Preempted(step, stop_requests.reason, workdir)
    if step == total_steps or (config.eval_every_steps and
                               step % config.eval_every_steps == 0):
      result = trainer.evaluate(eval_source, source)
      writer.write({'step': step, 'split': 'eval', **result})
      evaluation.log_eval(step, result)
      events.evaluation(step, trainer, eval_source, result)
      _write_assignments(trainer, eval_source, result, workdir)
  logging.info('Finished %d steps in %s.', total_steps - start_step,
               _format_time(time.time() - run_start))
  return result


def _train_batches(config, trainer, source, workdir):
  """The training input stream from step 0: augmented images, or with
  data.cached_views pairs of cached backbone features (built first)."""
  placement = dict(process_index=jax.process_index(),
                   process_count=jax.process_count())
  if config.data.cached_views:
    views = feature_cache.build_or_load(trainer, source, workdir)
    dataset = feature_cache.train_dataset(
        views, batch_size=config.batch_size, seed=config.seed, **placement)
  else:
    dataset = data_lib.train_dataset(
        source, batch_size=config.batch_size, seed=config.seed,
        aug_config=config.aug, weak_view_a=config.method == 'selflabel',
        **placement)
  return data_lib.train_iterator(dataset, num_threads=config.data.num_threads)


def _write_assignments(trainer, eval_source, result, workdir) -> None:
  """assignments.csv of an image folder's files (process 0)."""
  if eval_source.paths is None or jax.process_index() != 0:
    return
  confidence = report.cluster_confidence(trainer.config, result['evaluator'],
                                         trainer.last_embeddings,
                                         trainer.last_predictions)
  evaluation.write_assignments(
      checkpoints.workdir_path(workdir) / evaluation.ASSIGNMENTS_FILE,
      eval_source, trainer.last_predictions, confidence)


def image_shape_of(config, source) -> tuple[int, ...]:
  """(H, W, C) the network sees: the source's, or the crop size."""
  image_shape = source.read([0]).shape[1:]
  if config.aug.output_size:
    image_shape = (config.aug.output_size,) * 2 + image_shape[-1:]
  return tuple(image_shape)


