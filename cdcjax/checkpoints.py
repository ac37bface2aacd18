"""Checkpoints: the training state and the input iterator's position, saved
together, and the weights a run can start from (`config.init_from`).

A checkpoint step directory holds two items: `state` (the TrainState, Orbax
standard format) and `data` (grain's iterator state, one JSON file per
process), so a resumed run reads exactly the batches it would have read.
"""

import dataclasses
import json
import os
import re
import shutil
import time

from absl import logging
from etils import epath
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp

from cdcjax import methods
from cdcjax import models
from cdcjax.errors import CheckpointSaveFailure, TrainingFailure


def workdir_path(workdir) -> epath.Path:
  """The workdir as an epath (local, or gs:// and other object stores);
  local paths made absolute, as Orbax wants."""
  path = epath.Path(workdir)
  return path if '://' in str(workdir) else epath.Path(os.path.abspath(
      workdir))


def open_manager(workdir: str, max_to_keep: int,
                 keep_every_steps: int = 0) -> ocp.CheckpointManager:
  """Keeps the newest `max_to_keep` checkpoints, and with keep_every_steps
  > 0 also every checkpoint whose step is a multiple of it (milestones,
  Orbax's keep_period), which max_to_keep never deletes."""
  return ocp.CheckpointManager(
      workdir_path(workdir) / 'checkpoints',
      options=ocp.CheckpointManagerOptions(
          max_to_keep=max_to_keep, keep_period=keep_every_steps or None,
          create=True))


def latest_step(workdir: str) -> int | None:
  """The newest complete checkpoint's step in `workdir`, None if it has
  none (the directory need not exist; nothing is created)."""
  directory = workdir_path(workdir) / 'checkpoints'
  if not directory.is_dir():
    return None
  manager = ocp.CheckpointManager(directory)
  try:
    return manager.latest_step()
  finally:
    manager.close()


def save(manager: ocp.CheckpointManager, step: int, state,
         data_iterator: grain.DatasetIterator) -> None:
  """Saves asynchronously; the iterator's position is taken now, so the
  caller may keep reading from it. A failed write (this one, or the previous
  asynchronous one) raises CheckpointSaveFailure."""
  try:
    manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(data_iterator)))
  except Exception as e:  # pylint: disable=broad-except
    raise _save_failure(manager, step, e) from e


def wait_for_save(manager: ocp.CheckpointManager) -> None:
  """Waits for the asynchronous save; raises CheckpointSaveFailure if it
  failed."""
  try:
    manager.wait_until_finished()
  except Exception as e:  # pylint: disable=broad-except
    raise _save_failure(manager, None, e) from e


def _save_failure(manager, step, error) -> CheckpointSaveFailure:
  """One line: what failed, the free space, one checkpoint's size and the
  intact checkpoints a rerun resumes from. The half-written directories of
  the failed save are removed (Orbax never restores them, but they hold the
  space)."""
  directory = epath.Path(manager.directory)
  try:  # An earlier save still in flight finishes (or fails) first.
    manager.wait_until_finished()
  except Exception:  # pylint: disable=broad-except
    pass  # The failure being reported; its partial directory goes below.
  for partial in directory.glob('*.orbax-checkpoint-tmp*'):
    if step is None or partial.name.startswith(f'{step}.'):
      shutil.rmtree(partial, ignore_errors=True)
  manager.reload()
  intact = sorted(manager.all_steps())
  size = _directory_bytes(directory / str(intact[-1])) if intact else 0
  try:
    free = shutil.disk_usage(str(directory)).free
  except OSError:
    free = -1
  what = f'step {step}' if step is not None else 'the latest save'
  return CheckpointSaveFailure(
      f'saving checkpoint {what} in {directory} failed '
      f'({_describe(error)}); free space '
      f'{free / 2**20:.1f} MiB, one checkpoint {size / 2**20:.1f} MiB. '
      + (f'Checkpoints {intact} are intact: make room and rerun the same '
         f'command to resume from step {intact[-1]}' if intact else
         'No checkpoint was saved before: make room and rerun'))


def _directory_bytes(path: epath.Path) -> int:
  """Bytes under a local directory (0 for an object store: not walked)."""
  if '://' in str(path):
    return 0
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(str(path)) for name in names)


def _describe(error: BaseException) -> str:
  """An exception in one line: its type and its message's first line."""
  lines = str(error).strip().splitlines()
  return f'{type(error).__name__}: ' + (lines[0][:300] if lines else
                                       repr(error))


def restore_latest(manager: ocp.CheckpointManager, state,
                   data_iterator: grain.DatasetIterator | None):
  """Restores the newest readable checkpoint into (a copy of) `state` and,
  in place, into `data_iterator` (None: the state only, e.g. to evaluate a
  finished run, or to restore the iterator later with restore_data);
  returns (state, step), step 0 when there is no checkpoint (then nothing
  changes).

  A checkpoint that cannot be read (its state, its metadata or this
  process's input-stream file) is named in a warning and, once an older one
  has been read, moved to WORKDIR/damaged_checkpoints/ (renamed, never
  deleted); with none readable, TrainingFailure says so and nothing moves.
  """
  steps = sorted(manager.all_steps(), reverse=True)
  if not steps:
    return state, 0
  damaged = []
  for step in steps:
    step_dir = epath.Path(manager.directory) / str(step)
    try:
      restored = _restore(manager, step, state, data_iterator)
    except TrainingFailure:
      raise  # Readable, but not this run's (another format or process count).
    except Exception as e:  # pylint: disable=broad-except
      reason = _describe(e)
      logging.warning('Checkpoint %s cannot be read (%s).', step_dir, reason)
      damaged.append((step_dir, reason))
      continue
    if damaged:
      _move_aside(manager, [d for d, _ in damaged])
      logging.warning('Resuming from the older checkpoint at step %d; the '
                      'unreadable one(s) moved to %s.', step,
                      _damaged_dir(manager))
    logging.info('Resumed from checkpoint at step %d in %s', step,
                 manager.directory)
    return restored, step
  raise TrainingFailure(
      f'no checkpoint in {manager.directory} can be read (steps {steps}; '
      f'the newest, {damaged[0][0].name}: {damaged[0][1]}); nothing was '
      'changed. Move them aside to start afresh, or use a new --workdir')


def _restore(manager, step, state, data_iterator):
  """The state (and, given an iterator, the input position) saved at step;
  the input-stream file is checked either way, so a damaged one is found
  before training starts."""
  step_dir = epath.Path(manager.directory) / str(step)
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  if dataclasses.is_dataclass(state):
    abstract = _saved_fields(abstract, step_dir / 'state')
  _check_data_file(step_dir)
  items = {'state': ocp.args.StandardRestore(abstract)}
  if data_iterator is not None:
    items['data'] = _data_restore_args(step_dir, data_iterator)
  restored = manager.restore(step, args=ocp.args.Composite(**items))
  if dataclasses.is_dataclass(state):
    return state.replace(**restored['state'])
  return restored['state']


def _damaged_dir(manager) -> epath.Path:
  return epath.Path(manager.directory).parent / 'damaged_checkpoints'


def _move_aside(manager, step_dirs) -> None:
  """Renames unreadable step directories out of the checkpoint directory
  (process 0; the others wait), so that no later restore tries them."""
  if jax.process_index() == 0:
    target = _damaged_dir(manager)
    target.mkdir(parents=True, exist_ok=True)
    for step_dir in step_dirs:
      name = f'{step_dir.name}-{time.strftime("%Y%m%d-%H%M%S")}'
      step_dir.rename(target / name)
  ocp.multihost.sync_global_processes('cdcjax_damaged_checkpoints_moved')
  manager.reload()


def restore_data(manager: ocp.CheckpointManager, step: int,
                 data_iterator: grain.DatasetIterator) -> None:
  """Restores, in place, the input iterator's position saved at `step`."""
  step_dir = epath.Path(manager.directory) / str(step)
  args = _data_restore_args(step_dir, data_iterator)
  try:
    manager.restore(step, args=ocp.args.Composite(data=args))
  except Exception as e:  # pylint: disable=broad-except
    raise TrainingFailure(
        f'the input-stream position in checkpoint {step_dir} cannot be read '
        f'({_describe(e)}); move that step directory '
        'aside to resume from an older one') from e


def _data_restore_args(step_dir, data_iterator):
  if not (step_dir / 'data').is_dir():
    raise TrainingFailure(
        f'checkpoint {step_dir} has no saved input-iterator state (written '
        'by an older cdcjax?); it cannot be resumed exactly. Use a new '
        '--workdir, or start from its weights with --config.init_from')
  if not _data_file(step_dir).exists():
    written = sorted(p.name for p in (step_dir / 'data').iterdir())
    raise TrainingFailure(
        f'checkpoint {step_dir} holds the input streams of another process '
        f'count ({written}); this run has {jax.process_count()} '
        'process(es), so it cannot continue the stream exactly. Resume with '
        'the same number of processes')
  return grain.checkpoint.CheckpointRestore(data_iterator)


def _data_file(step_dir) -> epath.Path:
  """This process's saved input-stream position in a step directory."""
  return (epath.Path(step_dir) / 'data' /
          f'process_{jax.process_index()}-of-{jax.process_count()}.json')


def _check_data_file(step_dir) -> None:
  """Raises if this process's input-stream file is missing while the files
  of this process count are there (or none is), or is not JSON. Files of
  another process count only are not damage (the state alone restores)."""
  data_dir = epath.Path(step_dir) / 'data'
  if not data_dir.is_dir():
    return  # An older format; _data_restore_args says so when it matters.
  mine = _data_file(step_dir)
  if mine.exists():
    json.loads(mine.read_text())
    return
  written = [p.name for p in data_dir.glob('process_*.json')]
  if not written or any(name.endswith(f'-of-{jax.process_count()}.json')
                        for name in written):
    raise FileNotFoundError(f'{mine} is missing')


def _saved_fields(abstract_state, state_dir: str) -> dict:
  """The restore target for a train state: its fields that the checkpoint
  holds. A field added to the state later (e.g. head_losses) is absent from
  older checkpoints; that is fine while it is None (unused) in this run."""
  metadata = ocp.StandardCheckpointer().metadata(state_dir).item_metadata
  saved = set(metadata.tree)
  fields = {f.name: getattr(abstract_state, f.name)
            for f in dataclasses.fields(abstract_state)}
  missing = [k for k, v in fields.items() if k not in saved and v is not None]
  if missing:
    raise TrainingFailure(
        f'checkpoint {state_dir} has no {missing} (written by an older cdcjax '
        'or another config); start a new --workdir, or use --config.init_from')
  return {k: v for k, v in fields.items() if k in saved}


def load_converted_backbone(init_from: str, state):
  """The backbone of a `python -m cdcjax.convert` output directory; strict:
  every backbone variable present with the same shape, nothing extra."""
  from cdcjax import convert  # pylint: disable=g-import-not-at-top
  try:
    restored = convert.restore(init_from)['backbone']
  except Exception as e:  # pylint: disable=broad-except
    raise TrainingFailure(
        f'config.init_from={init_from!r}: the converted backbone cannot be '
        f'read ({_describe(e)}); convert the PyTorch '
        'checkpoint again (python -m cdcjax.convert)') from e
  loaded = {'params': restored['params'],
            'batch_stats': restored['batch_stats']}
  expected = {'params': state.params['backbone'],
              'batch_stats': state.batch_stats['backbone']}
  check_same_tree(loaded, expected, f'{init_from} (converted backbone)')
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


def load_weights(init_from: str, state, fresh: tuple[str, ...] = (),
                 skip: tuple[str, ...] = ()):
  """Parameters and BatchNorm statistics from the newest checkpoint of the
  workdir `init_from` (optimiser state and step start fresh), or the backbone
  of a converted PyTorch checkpoint (a directory with variables/). Every
  parameter must be present with the same shape; extra ones are an error.
  The top-level modules named in `fresh` keep `state`'s initialisation and
  may be missing from the source ('cluster_head' covers every cluster head of
  a multi-head model); those named in `skip` are the source's
  modules that are not loaded (another method's head, e.g. CD's
  'feature_predictor' when CDC's heads start from a CD run)."""
  unknown = sorted(set(fresh) - set(state.params))
  if unknown:
    raise TrainingFailure(
        f'config.init_fresh names {unknown}, which this model does not have; '
        f'allowed: {sorted(state.params)}')
  fresh = _with_every_cluster_head(fresh, state.params)
  if os.path.isdir(os.path.join(init_from, 'variables')):
    if fresh or skip:
      raise TrainingFailure(
          f'config.init_fresh={tuple(fresh)}, config.init_skip={tuple(skip)} '
          f'with a converted backbone in {init_from!r}: only the backbone is '
          'loaded there, the heads are fresh already')
    return load_converted_backbone(init_from, state)
  directory = os.path.abspath(os.path.join(init_from, 'checkpoints'))
  manager = ocp.CheckpointManager(directory)
  step = manager.latest_step()
  if step is None:
    raise TrainingFailure(f'config.init_from={init_from!r} holds no '
                          f'checkpoint (looked in {directory})')
  try:
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore()))['state']
  except Exception as e:  # pylint: disable=broad-except
    raise TrainingFailure(
        f'config.init_from={init_from!r}: its newest checkpoint (step {step}) '
        f'cannot be read ({_describe(e)})') from e
  finally:
    manager.close()
  loaded = {'params': restored['params'],
            'batch_stats': restored['batch_stats']}
  not_in_source = sorted(set(skip) - set(loaded['params']))
  if not_in_source:
    raise TrainingFailure(
        f'config.init_skip names {not_in_source}, which {init_from!r} does '
        f'not have; its modules: {sorted(loaded["params"])}')
  loaded = _without_modules(loaded, skip)
  if restored.get('head_losses') is not None and state.head_losses is None:
    loaded = _keep_selected_head(loaded, restored['head_losses'], init_from)
  expected = {'params': state.params, 'batch_stats': state.batch_stats}
  # Modules kept fresh need not exist in the source: a CDC model can start
  # from an instance-only (SimCLR-style) run, which has no cluster head.
  kept = _without_modules(loaded, fresh)
  check_same_tree(kept, _without_modules(expected, fresh), init_from)
  loaded = {collection: {**kept[collection],
                         **{k: v for k, v in tree.items() if k in fresh}}
            for collection, tree in expected.items()}
  logging.info('Initialised weights from %s (step %d)%s', init_from, step,
               f'; kept {sorted(fresh)} fresh' if fresh else '')
  cast = lambda new, old: jax.device_put(np.asarray(new, old.dtype),
                                         old.sharding)
  return state.replace(
      params=jax.tree.map(cast, loaded['params'], state.params),
      batch_stats=jax.tree.map(cast, loaded['batch_stats'],
                               state.batch_stats))


def _with_every_cluster_head(fresh, modules) -> tuple[str, ...]:
  """'cluster_head' in init_fresh stands for every cluster head of a
  multi-head model ('cluster_head_1', ...): a two-stage config names one head
  and keeps working with model.num_cluster_heads > 1."""
  fresh = tuple(fresh)
  if 'cluster_head' not in fresh:
    return fresh
  others = sorted((m for m in modules
                   if re.fullmatch(r'cluster_head_\d+', m) and m not in fresh),
                  key=lambda m: int(m.rsplit('_', 1)[1]))
  return fresh + tuple(others)


def _without_modules(variables: dict, names) -> dict:
  """`variables` ({collection: {module: tree}}) without the named modules."""
  return {collection: {k: v for k, v in tree.items() if k not in names}
          for collection, tree in variables.items()}


def _keep_selected_head(variables: dict, head_losses, source: str) -> dict:
  """A multi-head run's variables with its selected cluster head (lowest
  average loss) as the single 'cluster_head' (e.g. for self-labeling)."""
  head_losses = np.asarray(head_losses)
  best = int(methods.selected_head(head_losses))
  logging.info('%s has %d cluster heads; keeping head %d (lowest average '
               'loss %.4f)', source, len(head_losses), best, head_losses[best])
  names = {models.cluster_head_name(h) for h in range(len(head_losses))}
  out = {}
  for collection, tree in variables.items():
    tree = dict(tree)
    if models.cluster_head_name(best) in tree:
      tree['cluster_head'] = tree[models.cluster_head_name(best)]
    out[collection] = {k: v for k, v in tree.items()
                       if k not in names or k == 'cluster_head'}
  return out


def check_same_tree(loaded, expected, source: str) -> None:
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
