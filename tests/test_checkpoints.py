"""Checkpoints carry the input stream's position: a resumed run reads exactly
the batches an uninterrupted run would have read, and ends in the same state."""

import os
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from cdcjax import checkpoints
from cdcjax import config_validation
from cdcjax import recipes
from cdcjax import data
from cdcjax import train
from tests.saved_state import latest_saved_state


@pytest.fixture(scope='module')
def source():
  return data.load_source(recipes.digits().data, 'all')


def _dataset(source):
  return data.train_dataset(source, batch_size=32, seed=3,
                            aug_config=recipes.digits().aug)


def test_resumed_stream_continues_where_it_stopped(source, tmp_path):
  state = {'w': np.arange(3.0)}
  batches = data.train_iterator(_dataset(source))
  for _ in range(7):
    next(batches)
  manager = checkpoints.open_manager(str(tmp_path), max_to_keep=2)
  checkpoints.save(manager, 7, state, batches)
  expected = [next(batches) for _ in range(3)]  # Read on while it saves.
  manager.wait_until_finished()

  fresh = data.train_iterator(_dataset(source))
  restored, step = checkpoints.restore_latest(manager, state, fresh)
  assert step == 7
  np.testing.assert_array_equal(restored['w'], state['w'])
  for want in expected:
    got = next(fresh)
    for key in ('index', 'view_a', 'view_b'):
      np.testing.assert_array_equal(got[key], want[key])
  manager.close()


def test_milestones_outlive_the_newest_checkpoints(source, tmp_path):
  """keep_checkpoint_every_steps: multiples of it stay beside the newest
  keep_checkpoints; without it only the newest ones do."""
  for keep_every, expected in ((4, [4, 8, 9, 10]), (0, [9, 10])):
    batches = data.train_iterator(_dataset(source))
    manager = checkpoints.open_manager(str(tmp_path / str(keep_every)),
                                       max_to_keep=2,
                                       keep_every_steps=keep_every)
    for step in range(1, 11):
      checkpoints.save(manager, step, {'w': np.full(2, float(step))}, batches)
      manager.wait_until_finished()
    assert sorted(manager.all_steps()) == expected
    restored, step = checkpoints.restore_latest(
        manager, {'w': np.zeros(2)}, data.train_iterator(_dataset(source)))
    assert step == 10 and restored['w'][0] == 10.0
    manager.close()


def test_milestone_interval_is_validated():
  config = recipes.digits('tiny')
  config.keep_checkpoint_every_steps = config.checkpoint_every_steps + 1
  with pytest.raises(config_validation.ConfigError,
                     match=r'keep_checkpoint_every_steps.*positive multiple '
                     r'of checkpoint_every_steps \(4\)'):
    config_validation.validate(config, 1)
  config.keep_checkpoint_every_steps = 8
  config_validation.validate(config, 1)


def test_no_checkpoint_leaves_everything_alone(source, tmp_path):
  manager = checkpoints.open_manager(str(tmp_path), max_to_keep=2)
  batches = data.train_iterator(_dataset(source))
  state, step = checkpoints.restore_latest(manager, {'w': 1}, batches)
  assert (state, step) == ({'w': 1}, 0)
  np.testing.assert_array_equal(next(batches)['index'],
                                _dataset(source)[0]['index'])


def test_checkpoint_without_stream_state_is_refused(source, tmp_path):
  manager = ocp.CheckpointManager(os.path.abspath(str(tmp_path)))
  manager.save(4, args=ocp.args.StandardSave({'w': np.zeros(2)}))
  manager.wait_until_finished()
  with pytest.raises(checkpoints.TrainingFailure, match='iterator state'):
    checkpoints.restore_latest(manager, {'w': np.zeros(2)},
                               data.train_iterator(_dataset(source)))


# The default suite's bit-identical resume is tests/test_faults.py's (stopped
# by SIGTERM between periodic saves); this one resumes a periodic checkpoint.
@pytest.mark.slow
def test_interrupted_run_ends_like_an_uninterrupted_one(tmp_path):
  config = recipes.digits('tiny')
  config.evaluators = ('cluster_head',)
  config.checkpoint_every_steps = 3
  config.total_steps = 6
  straight = str(tmp_path / 'straight')
  train.train_and_evaluate(config, straight)
  # A run that died after step 3: the same workdir without the later steps.
  interrupted = str(tmp_path / 'interrupted')
  shutil.copytree(straight, interrupted)
  shutil.rmtree(os.path.join(interrupted, 'checkpoints', '6'))
  train.train_and_evaluate(config, interrupted)
  jax.tree.map(np.testing.assert_array_equal,
               latest_saved_state(straight)[1]['params'],
               latest_saved_state(interrupted)[1]['params'])


def test_other_process_count_is_refused_but_state_alone_restores(source,
                                                                 tmp_path):
  manager = checkpoints.open_manager(str(tmp_path), max_to_keep=2)
  batches = data.train_iterator(_dataset(source))
  checkpoints.save(manager, 3, {'w': np.ones(2)}, batches)
  manager.wait_until_finished()
  data_dir = tmp_path / 'checkpoints' / '3' / 'data'
  os.rename(data_dir / 'process_0-of-1.json', data_dir / 'process_0-of-2.json')
  with pytest.raises(checkpoints.TrainingFailure, match='process count'):
    checkpoints.restore_latest(manager, {'w': np.zeros(2)},
                               data.train_iterator(_dataset(source)))
  state, step = checkpoints.restore_latest(manager, {'w': np.zeros(2)}, None)
  assert step == 3
  np.testing.assert_array_equal(state['w'], np.ones(2))


def test_checkpoint_from_before_a_new_state_field_still_restores(source,
                                                                 tmp_path):
  # A train state saved before head_losses existed (the field is absent).
  old = {'step': np.array(5, np.int32), 'params': {'w': np.ones(2)},
         'batch_stats': {}, 'opt_state': {'m': np.full(2, 3.0)},
         'ema_params': None}
  manager = checkpoints.open_manager(str(tmp_path), max_to_keep=2)
  checkpoints.save(manager, 5, old, data.train_iterator(_dataset(source)))
  manager.wait_until_finished()
  fresh = train.TrainState(step=np.array(0, np.int32), params={'w': np.zeros(2)},
                           batch_stats={}, opt_state={'m': np.zeros(2)})
  state, step = checkpoints.restore_latest(
      manager, fresh, data.train_iterator(_dataset(source)))
  assert step == 5 and state.head_losses is None
  np.testing.assert_array_equal(state.params['w'], np.ones(2))
  np.testing.assert_array_equal(state.opt_state['m'], np.full(2, 3.0))
  # A run that needs the missing field is refused with its name.
  with pytest.raises(checkpoints.TrainingFailure, match='head_losses'):
    checkpoints.restore_latest(manager, fresh.replace(head_losses=np.zeros(3)),
                               None)
