"""The error a training run stops with when it cannot go on."""


class TrainingFailure(RuntimeError):
  """A run that cannot continue (bad input, diverged loss, mismatched
  checkpoint); main.py prints its message as one line, without a traceback."""
