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

from cdcjax import data as data_lib
from cdcjax import losses
from cdcjax import metrics as metrics_lib
from cdcjax import models

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


def make_optimizer(config, total_steps: int) -> optax.GradientTransformation:
  oc = config.optimizer
  warmup = int(oc.warmup_fraction * total_steps)
  if warmup > 0:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, oc.learning_rate, warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1), end_value=0.0)
  else:
    schedule = optax.cosine_decay_schedule(oc.learning_rate, total_steps)
  if oc.name == 'sgd':  # PyTorch SGD: decay added to the gradient.
    return optax.chain(
        optax.add_decayed_weights(oc.weight_decay),
        optax.sgd(schedule, momentum=oc.momentum, nesterov=oc.nesterov))
  if oc.name == 'adam':  # PyTorch Adam: L2 added to the gradient.
    return optax.chain(optax.add_decayed_weights(oc.weight_decay),
                       optax.adam(schedule))
  return optax.adamw(schedule, weight_decay=oc.weight_decay)


def init_state(model, optimizer, config, image_shape) -> TrainState:
  dummy = jnp.zeros((2,) + tuple(image_shape), jnp.float32)
  variables = model.init(jax.random.key(config.seed), dummy, train=False)
  params = variables['params']
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get('batch_stats', {}),
                    opt_state=optimizer.init(params))


def loss_fn(config, outputs_a, outputs_b) -> losses.CDCLoss:
  lc = config.loss
  return losses.cdc_loss(
      outputs_a['c'], outputs_a['s'], outputs_b['c'], outputs_b['s'],
      temperature=lc.temperature, cluster_temperature=lc.cluster_temperature,
      equipartition_weight=lc.equipartition_weight,
      sinkhorn_epsilon=lc.sinkhorn_epsilon, sinkhorn_iters=lc.sinkhorn_iters,
      sinkhorn_target=lc.sinkhorn_target, normalize_c=lc.normalize_c,
      use_infonce=lc.use_infonce, use_equipartition=lc.use_equipartition)


def make_train_step(model, optimizer, config):
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
      result = loss_fn(config, *outputs)
      return result.total, (result, batch_stats)

    grads, (result, batch_stats) = jax.grad(compute_loss, has_aux=True)(
        state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = TrainState(step=state.step + 1, params=params,
                           batch_stats=batch_stats, opt_state=opt_state)
    metrics = {'loss': result.total, 'infonce': result.infonce,
               'equipartition': result.equipartition,
               'grad_norm': optax.global_norm(grads)}
    return new_state, metrics

  return train_step


def make_eval_step(model):
  def eval_step(state: TrainState, images):
    out = model.apply({'params': state.params,
                       'batch_stats': state.batch_stats}, images, train=False)
    return jnp.argmax(out['c'], axis=-1)
  return eval_step


class Trainer:
  """Holds the compiled steps and shardings for one config and mesh."""

  def __init__(self, config, mesh: Mesh, image_shape, num_examples: int):
    self.config = config
    self.mesh = mesh
    self.total_steps = num_train_steps(config, num_examples)
    self.model = models.make_model(config.model, config.num_clusters)
    self.optimizer = make_optimizer(config, self.total_steps)
    self.replicated = NamedSharding(mesh, P())
    self.batch_sharding = NamedSharding(mesh, P('data'))
    self.state = jax.jit(
        lambda: init_state(self.model, self.optimizer, config, image_shape),
        out_shardings=self.replicated)()
    self.train_step = jax.jit(
        make_train_step(self.model, self.optimizer, config),
        in_shardings=(self.replicated, self.batch_sharding),
        out_shardings=(self.replicated, self.replicated), donate_argnums=0)
    self.eval_step = jax.jit(
        make_eval_step(self.model),
        in_shardings=(self.replicated, self.batch_sharding),
        out_shardings=self.replicated)

  def to_global(self, host_batch: dict) -> dict:
    """Assembles global arrays from this process's slice of the host batch."""
    num_processes, index = jax.process_count(), jax.process_index()

    def put(x):
      per_process = x.shape[0] // num_processes
      local = x[index * per_process:(index + 1) * per_process]
      return jax.make_array_from_process_local_data(self.batch_sharding, local)

    return jax.tree.map(put, host_batch)

  def step(self, host_batch: dict) -> dict:
    batch = self.to_global({'view_a': host_batch['view_a'],
                            'view_b': host_batch['view_b']})
    self.state, metrics = self.train_step(self.state, batch)
    return metrics

  def evaluate(self, source: data_lib.ArraySource) -> dict:
    predictions = []
    for batch in data_lib.eval_batches(source, self.config.eval_batch_size):
      images = self.to_global({'image': batch['image']})['image']
      predicted = np.asarray(jax.device_get(self.eval_step(self.state, images)))
      predictions.append(predicted[batch['mask']])
    predictions = np.concatenate(predictions)
    return metrics_lib.clustering_metrics(predictions, source.labels,
                                          self.config.num_clusters)


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


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (or resumes) in `workdir` and returns the final evaluation."""
  os.makedirs(workdir, exist_ok=True)
  check_workdir_config(config, workdir)
  source = data_lib.load_source(config.data)
  mesh = make_mesh()
  trainer = Trainer(config, mesh, source.images.shape[1:], len(source))
  total_steps = trainer.total_steps
  writer = MetricsWriter(os.path.join(workdir, 'metrics.jsonl'))
  manager = ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, 'checkpoints')),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=config.keep_checkpoints, create=True))

  start_step = _restore_latest(manager, trainer, workdir)
  if start_step >= total_steps:
    logging.info('Run already finished at step %d (total_steps=%d); '
                 'evaluating the final checkpoint only.', start_step,
                 total_steps)
    result = trainer.evaluate(source)
    _log_eval(start_step, result)
    manager.close()
    return result

  logging.info('Training %s on %s (%d images) for %d steps, global batch %d, '
               '%d devices.', config.method, source.name, len(source),
               total_steps, config.batch_size, mesh.size)
  dataset = data_lib.train_dataset(source, batch_size=config.batch_size,
                                   seed=config.seed, aug_config=config.aug)
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
      logging.info('step %d/%d loss %.4f (infonce %.4f, eq %.4f) | %.1f steps/s '
                   '%.0f img/s | elapsed %s ETA %s', step, total_steps,
                   metrics['loss'], metrics['infonce'],
                   metrics['equipartition'], rate,
                   rate * config.batch_size,
                   _format_time(time.time() - run_start), _format_time(eta))
      writer.write({'step': step, 'split': 'train', 'steps_per_sec': rate,
                    **metrics})
      interval_start, interval_steps = time.time(), 0
    if save_now:
      manager.save(step, args=ocp.args.StandardSave(trainer.state))
    if step == total_steps or (config.eval_every_steps and
                               step % config.eval_every_steps == 0):
      result = trainer.evaluate(source)
      writer.write({'step': step, 'split': 'eval', **result})
      _log_eval(step, result)
  manager.wait_until_finished()
  manager.close()
  logging.info('Finished %d steps in %s.', total_steps - start_step,
               _format_time(time.time() - run_start))
  return result


def _log_eval(step: int, result: dict) -> None:
  logging.info('eval step %d: ACC %.4f NMI %.4f ARI %.4f | cluster sizes %s '
               '(size entropy %.3f)', step, result['acc'], result['nmi'],
               result['ari'], result['cluster_sizes'],
               result['cluster_size_entropy'])
