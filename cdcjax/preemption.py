"""Stopping a run on request: SIGTERM (a preemptible VM's notice, SLURM's
time limit) or a first Ctrl-C finishes the current step, saves a checkpoint
at it and stops with EXIT_PREEMPTED; the same command resumes. A second
Ctrl-C stops at once.

One process: the signal handlers only set a flag, read between steps, so
nothing races the step. Several processes: JAX's preemption service (the
coordination service catches SIGTERM on any process) agrees on one step at
which every process saves, through Orbax's `reached_preemption`; a Ctrl-C
there is left to the launcher (it stops the processes at once).
"""

import signal
import threading

from absl import logging
import jax

# sysexits' EX_TEMPFAIL: the run stopped cleanly and a rerun resumes it.
EXIT_PREEMPTED = 75


class Preempted(Exception):
  """Training stopped on request after saving a checkpoint at `step`."""

  def __init__(self, step: int, reason: str, workdir: str):
    super().__init__(
        f'stopped by {reason} at step {step}; a checkpoint at step {step} is '
        f'in {workdir}: rerun the same command to resume')
    self.step, self.reason = step, reason


class StopRequests:
  """While entered: SIGTERM and a first SIGINT request a stop (one
  process); `requested(manager, step)` says, after each step, whether to save
  and stop now."""

  def __init__(self):
    self.reason = None
    self._previous = {}

  def __enter__(self):
    if jax.process_count() == 1 and (threading.current_thread()
                                     is threading.main_thread()):
      for signum in (signal.SIGTERM, signal.SIGINT):
        # An ignored signal (Ctrl-C of a background job) stays ignored.
        if signal.getsignal(signum) is not signal.SIG_IGN:
          self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}
    return False

  def _handle(self, signum, frame):
    del frame
    if self.reason is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt  # The second Ctrl-C: stop at once.
    self.reason = signal.Signals(signum).name
    logging.warning('%s received: finishing this step, then saving a '
                    'checkpoint and stopping%s.', self.reason,
                    ' (Ctrl-C again stops at once)'
                    if signum == signal.SIGINT else '')

  def requested(self, manager, step: int) -> bool:
    """Every process calls this after every step, with the same steps."""
    if jax.process_count() > 1:
      # True on every process at the same step once any of them got SIGTERM.
      if manager.reached_preemption(step):
        self.reason = 'a preemption notice (SIGTERM)'
        return True
      return False
    return self.reason is not None
