"""Faults a long run meets (issue 35): a stop request (SIGTERM, Ctrl-C), an
unreadable checkpoint, a failed save (full disk). Each ends in one line, and
the workdir resumes from its newest intact checkpoint."""

import errno
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from cdcjax import checkpoints
from cdcjax import data
from cdcjax import preemption
from cdcjax import recipes
from cdcjax import train
from cdcjax.errors import CheckpointSaveFailure, TrainingFailure
from tests.saved_state import latest_saved_state


def _config(total_steps=12):
  config = recipes.digits('tiny')
  config.evaluators = ('cluster_head',)
  config.total_steps = total_steps
  return config


def _run(config, workdir):
  return train.train_and_evaluate(config, str(workdir),
                                  mesh=train.make_mesh(jax.devices()[:1]))


def _signal_at(monkeypatch, step_to_signal, signum):
  """Sends `signum` to this process while step `step_to_signal` runs."""
  real_step = train.Trainer.step

  def step(self, batch):
    metrics = real_step(self, batch)
    if int(self.state.step) == step_to_signal:
      os.kill(os.getpid(), signum)
    return metrics

  monkeypatch.setattr(train.Trainer, 'step', step)


# SIGINT takes the same path (test_second_ctrl_c_stops_at_once: its flag).
@pytest.mark.parametrize('signum', [signal.SIGTERM])
def test_stop_request_saves_that_step_and_resume_is_bit_identical(
    tmp_path, monkeypatch, signum):
  config = _config()
  _run(config, tmp_path / 'straight')

  stopped = tmp_path / 'stopped'
  with monkeypatch.context() as patch:
    _signal_at(patch, 6, signum)
    with pytest.raises(preemption.Preempted, match='at step 6') as stop:
      _run(config, stopped)
  name = signal.Signals(signum).name
  assert stop.value.reason == name and stop.value.step == 6
  # Between the periodic saves (4, 8).
  assert latest_saved_state(stopped)[0] == 6
  last = (stopped / 'metrics.jsonl').read_text().splitlines()[-1]
  assert f'"split": "stopped", "reason": "{name}"' in last
  # The handlers are the previous ones again once training has stopped.
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

  _run(config, stopped)
  step_a, a = latest_saved_state(tmp_path / 'straight')
  step_b, b = latest_saved_state(stopped)
  assert step_a == step_b == 12
  jax.tree.map(np.testing.assert_array_equal, a['params'], b['params'])
  jax.tree.map(np.testing.assert_array_equal, a['opt_state'], b['opt_state'])


def test_second_ctrl_c_stops_at_once():
  # From Python's own Ctrl-C handler (a background job starts with SIG_IGN).
  original = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    _second_ctrl_c_stops_at_once()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # An ignored one stays so.
    with preemption.StopRequests():
      assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
  finally:
    signal.signal(signal.SIGINT, original)


def _second_ctrl_c_stops_at_once():
  with preemption.StopRequests() as requests:
    assert not requests.requested(None, 1)
    os.kill(os.getpid(), signal.SIGINT)
    assert requests.requested(None, 2) and requests.reason == 'SIGINT'
    with pytest.raises(KeyboardInterrupt):  # Raised by the handler.
      os.kill(os.getpid(), signal.SIGINT)
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ---------------------------------------------------------------------------
# Unreadable checkpoints.

def _weights(step):
  # Random, so the array file is large (compression leaves it) and found.
  return np.random.default_rng(step).normal(size=(128, 128)).astype(
      np.float32)


def _state(step):
  return train.TrainState(step=jnp.array(step, jnp.int32),
                          params={'w': jnp.asarray(_weights(step))},
                          batch_stats={}, opt_state={'m': jnp.zeros(3)})


@pytest.fixture(scope='module')
def source():
  return data.load_source(recipes.digits().data, 'all')


def _batches(source):
  return data.train_iterator(data.train_dataset(
      source, batch_size=32, seed=3, aug_config=recipes.digits().aug))


def _two_checkpoints(source, workdir):
  manager = checkpoints.open_manager(str(workdir), max_to_keep=3)
  batches = _batches(source)
  for step in (3, 6):
    next(batches)
    checkpoints.save(manager, step, _state(step), batches)
    manager.wait_until_finished()
  return manager


def _largest_file(directory):
  files = [p for p in directory.rglob('*') if p.is_file()]
  return max(files, key=lambda p: p.stat().st_size)


def _overwrite(path):
  size = path.stat().st_size
  with open(path, 'r+b') as f:
    f.write(b'\0' * min(size, 4096))


def _truncate(path):
  path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


DAMAGES = {
    'state array overwritten': lambda d: _overwrite(
        _largest_file(d / 'state' / 'ocdbt.process_0')),
    'state array missing': lambda d: _largest_file(
        d / 'state' / 'ocdbt.process_0').unlink(),
    'state metadata truncated': lambda d: _truncate(d / 'state' / '_METADATA'),
    'state sharding truncated': lambda d: _truncate(d / 'state' / '_sharding'),
    'data file truncated': lambda d: _truncate(
        d / 'data' / 'process_0-of-1.json'),
    'data file overwritten': lambda d: _overwrite(
        d / 'data' / 'process_0-of-1.json'),
    'data file missing': lambda d: (d / 'data' / 'process_0-of-1.json').unlink(),
}


@pytest.mark.parametrize('damage', sorted(DAMAGES))
def test_unreadable_newest_checkpoint_is_moved_aside_and_older_one_resumes(
    source, tmp_path, damage):
  manager = _two_checkpoints(source, tmp_path)
  DAMAGES[damage](tmp_path / 'checkpoints' / '6')
  state, step = checkpoints.restore_latest(manager, _state(0), None)
  assert step == 3
  np.testing.assert_array_equal(state.params['w'], _weights(3))
  checkpoints.restore_data(manager, step, _batches(source))
  assert sorted(manager.all_steps()) == [3]
  moved = list((tmp_path / 'damaged_checkpoints').iterdir())
  assert len(moved) == 1 and moved[0].name.startswith('6-')
  assert (moved[0] / 'state').is_dir()  # Renamed whole, nothing deleted.
  manager.close()


def test_with_no_readable_checkpoint_nothing_changes(source, tmp_path):
  manager = _two_checkpoints(source, tmp_path)
  for step in ('3', '6'):
    DAMAGES['state metadata truncated'](tmp_path / 'checkpoints' / step)
  with pytest.raises(TrainingFailure, match=r'no checkpoint in .* can be read '
                     r'\(steps \[6, 3\].*nothing was changed'):
    checkpoints.restore_latest(manager, _state(0), None)
  assert sorted(p.name for p in (tmp_path / 'checkpoints').iterdir()) == [
      '3', '6']
  assert not (tmp_path / 'damaged_checkpoints').exists()
  manager.close()


def test_unreadable_init_from_is_one_line(source, tmp_path):
  _two_checkpoints(source, tmp_path).close()
  DAMAGES['state array overwritten'](tmp_path / 'checkpoints' / '6')
  with pytest.raises(TrainingFailure, match=r"config.init_from=.*step 6\) "
                     'cannot be read'):
    checkpoints.load_weights(str(tmp_path), _state(0))
  converted = tmp_path / 'converted'
  (converted / 'variables').mkdir(parents=True)
  (converted / 'variables' / '_METADATA').write_text('{not json')
  with pytest.raises(TrainingFailure, match='converted backbone cannot be '
                     'read'):
    checkpoints.load_weights(str(converted), _state(0))


# ---------------------------------------------------------------------------
# A save that fails (full disk).

@pytest.mark.parametrize('where', ['save', 'wait_until_finished'])
def test_failed_save_stops_cleanly_and_the_workdir_resumes(tmp_path,
                                                           monkeypatch, where):
  config = _config()
  workdir = tmp_path / 'run'
  real = getattr(ocp.CheckpointManager, where)
  calls = {'n': 0}

  def failing(self, *args, **kwargs):
    # The first save (step 4) succeeds; the next one finds the disk full.
    if where == 'save':
      if args[0] == 8:
        raise OSError(errno.ENOSPC, 'No space left on device')
    else:
      calls['n'] += 1
      if calls['n'] == 2:
        raise OSError(errno.ENOSPC, 'No space left on device')
    return real(self, *args, **kwargs)

  with monkeypatch.context() as patch:
    patch.setattr(ocp.CheckpointManager, where, failing)
    with pytest.raises(CheckpointSaveFailure,
                       match=r'saving checkpoint .* failed \(OSError: .*No '
                       r'space left.*free space .* MiB, one checkpoint .* MiB.*'
                       r'intact: make room and rerun') as failure:
      config.checkpoint_every_steps = 4
      _run(config, workdir)
  assert '\n' not in str(failure.value)
  intact = checkpoints.latest_step(str(workdir))
  assert intact in (4, 8)
  assert not list((workdir / 'checkpoints').glob('*tmp*'))
  if where == 'wait_until_finished':  # Resumes (one case: compile time).
    _run(config, workdir)
    assert checkpoints.latest_step(str(workdir)) == 12
