"""Trains and evaluates a clustering model.

  python -m cdcjax.main --config=configs/digits_cdc.py --workdir=/tmp/digits

`--config.<field>=<value>` overrides any config field. Rerunning with the same
--workdir resumes from the newest complete checkpoint. Multi-host runs (TPU
pods, GPU clusters) call `jax.distributed.initialize()` when --multihost is
given or CDCJAX_MULTIHOST=1 is set.
"""

import errno
import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from cdcjax import cli
from cdcjax import config_validation
from cdcjax import errors
from cdcjax import preemption
from cdcjax import stages
from cdcjax import train

_DEFAULT_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs',
    'digits_cdc.py')

_CONFIG = config_flags.DEFINE_config_file(
    'config', _DEFAULT_CONFIG, 'Path to a config file (configs/*.py).',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None,
                               'Directory for checkpoints and metrics.jsonl.')
_MULTIHOST = flags.DEFINE_bool(
    'multihost', os.environ.get('CDCJAX_MULTIHOST', '') == '1',
    'Call jax.distributed.initialize() (one process per host). On TPU pods '
    'and SLURM/MPI clusters it finds its peers by itself; elsewhere give the '
    'three flags below.')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0 (with --multihost).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None,
                                      'Number of processes (with --multihost).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None,
                                   'This process, 0-based (with --multihost).')


def _fail(message: str, status: int = 2) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(status)


def main(argv):
  if len(argv) > 1:
    _fail(f'unexpected arguments: {" ".join(argv[1:])}')
  if _WORKDIR.value is None:
    _fail('--workdir is required (checkpoints and metrics.jsonl go there)')
  if _MULTIHOST.value:
    # CPU processes (tests, loopback runs) exchange data through gloo.
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)
    # Orbax's barriers through the coordination service (5-minute timeout)
    # rather than collectives (gloo waits 30 s for a slower process).
    flags.FLAGS.experimental_orbax_use_distributed_barrier = True
  config = _CONFIG.value
  try:
    config_validation.validate(config, jax.device_count())
  except config_validation.ConfigError as e:
    _fail(str(e))
  logging.info('Devices: %d (%s) on %d process(es).', jax.device_count(),
               jax.devices()[0].platform, jax.process_count())
  try:
    train.check_inputs(config)
    result = stages.run(config, _WORKDIR.value)
  except preemption.Preempted as e:  # Not an error: a requested stop.
    print(f'cdcjax: {e}', file=sys.stderr)
    sys.exit(preemption.EXIT_PREEMPTED)
  except errors.CheckpointSaveFailure as e:
    _fail(str(e), errors.EXIT_SAVE_FAILED)
  except (train.TrainingFailure, FileNotFoundError) as e:
    _fail(str(e))
  except OSError as e:
    if e.errno != errno.ENOSPC:
      raise
    _fail(f'{e.filename or _WORKDIR.value}: no space left on the device '
          f'({e}); the checkpoints saved so far are intact: make room and '
          'rerun the same command to resume', errors.EXIT_SAVE_FAILED)
  if jax.process_index() == 0:
    print(stages.summary(config, _WORKDIR.value, result))


def _parse_flags(argv):
  """absl's flag parsing, with one-line errors instead of tracebacks for a
  missing config file, an unknown config field or a malformed value."""
  config_arg = next((a.split('=', 1)[1] for a in argv[1:]
                     if a.startswith('--config=')), None)
  if config_arg is not None:
    path = config_arg.split(':', 1)[0]
    if not os.path.isfile(path):
      _fail(f'--config={config_arg}: config file {path!r} does not exist')
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    if any(l.startswith('Traceback') for l in lines):  # Error in get_config.
      lines = [lines[0], lines[-1]]
    _fail(' '.join(lines))
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    detail = str(e).replace('\\n', ' ').replace("\\'", "'").strip("'\" ")
    detail = ' '.join(detail.replace("' ", ": ", 1).split())
    overrides = [a for a in argv[1:] if a.startswith('--config.')]
    _fail(f'bad config override ({" ".join(overrides)}): {detail}')


def run():
  cli.console_logging()
  app.run(main, flags_parser=_parse_flags)


if __name__ == '__main__':
  run()
