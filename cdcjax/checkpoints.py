"""Checkpoints: the training state and the input iterator's position, saved
together, and the weights a run can start from (`config.init_from`).

A checkpoint step directory holds two items: `state` (the TrainState, Orbax
standard format) and `data` (grain's iterator state, one JSON file per
process), so a resumed run reads exactly the batches it would have read.
"""

import dataclasses
import os
import re

from absl import logging
from etils import epath
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp

from cdcjax import methods
from cdcjax import models
from cdcjax.errors import TrainingFailure


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


def save(manager: ocp.CheckpointManager, step: int, state,
         data_iterator: grain.DatasetIterator) -> None:
  """Saves asynchronously; the iterator's position is taken now, so the
  caller may keep reading from it."""
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=grain.checkpoint.CheckpointSave(data_iterator)))


def restore_latest(manager: ocp.CheckpointManager, state,
                   data_iterator: grain.DatasetIterator | None):
  """Restores the newest complete checkpoint into (a copy of) `state` and,
  in place, into `data_iterator` (None: the state only, e.g. to evaluate a
  finished run, or to restore the iterator later with restore_data);
  returns (state, step), step 0 when there is no checkpoint (then nothing
  changes)."""
  latest = manager.latest_step()
  if latest is None:
    return state, 0
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  step_dir = epath.Path(manager.directory) / str(latest)
  if dataclasses.is_dataclass(state):
    abstract = _saved_fields(abstract, step_dir / 'state')
  items = {'state': ocp.args.StandardRestore(abstract)}
  if data_iterator is not None:
    items['data'] = _data_restore_args(step_dir, data_iterator)
  restored = manager.restore(latest, args=ocp.args.Composite(**items))
  logging.info('Resumed from checkpoint at step %d in %s', latest,
               manager.directory)
  if dataclasses.is_dataclass(state):
    return state.replace(**restored['state']), latest
  return restored['state'], latest


def restore_data(manager: ocp.CheckpointManager, step: int,
                 data_iterator: grain.DatasetIterator) -> None:
  """Restores, in place, the input iterator's position saved at `step`."""
  step_dir = epath.Path(manager.directory) / str(step)
  manager.restore(step, args=ocp.args.Composite(
      data=_data_restore_args(step_dir, data_iterator)))


def _data_restore_args(step_dir, data_iterator):
  if not (step_dir / 'data').is_dir():
    raise TrainingFailure(
        f'checkpoint {step_dir} has no saved input-iterator state (written '
        'by an older cdcjax?); it cannot be resumed exactly. Use a new '
        '--workdir, or start from its weights with --config.init_from')
  mine = (f'process_{jax.process_index()}-of-{jax.process_count()}.json')
  if not (step_dir / 'data' / mine).exists():
    written = sorted(p.name for p in (step_dir / 'data').iterdir())
    raise TrainingFailure(
        f'checkpoint {step_dir} holds the input streams of another process '
        f'count ({written}); this run has {jax.process_count()} '
        'process(es), so it cannot continue the stream exactly. Resume with '
        'the same number of processes')
  return grain.checkpoint.CheckpointRestore(data_iterator)


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
  restored = convert.restore(init_from)['backbone']
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
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore()))['state']
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
