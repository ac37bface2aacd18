"""The error a training run stops with when it cannot go on."""


# How a diverged run's error message starts (train.py), followed by the step;
# bench.py reads the step back from it. The loss is checked first: a NaN loss
# has a NaN gradient too.
NON_FINITE_LOSS_AT_STEP = 'non-finite loss at step'
NON_FINITE_GRAD_NORM_AT_STEP = 'non-finite gradient norm at step'


class TrainingFailure(RuntimeError):
  """A run that cannot continue (bad input, diverged loss, mismatched
  checkpoint); main.py prints its message as one line, without a traceback."""


class CheckpointSaveFailure(TrainingFailure):
  """A checkpoint could not be written (a full disk, a lost mount); the
  older checkpoints are intact. main.py exits with EXIT_SAVE_FAILED."""


# sysexits' EX_IOERR.
EXIT_SAVE_FAILED = 74
