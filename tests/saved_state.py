"""Reading a run's newest checkpoint in tests, without cdcjax's own restore
(so a test of that restore does not check it against itself)."""

import os

import orbax.checkpoint as ocp


def latest_saved_state(workdir) -> tuple[int, dict]:
  """(step, state) of the newest checkpoint under WORKDIR/checkpoints, the
  state as saved (nested dicts of arrays)."""
  manager = ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, 'checkpoints')))
  step = manager.latest_step()
  state = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore()))['state']
  manager.close()
  return step, state
