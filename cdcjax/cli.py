"""What the command-line programs (main, cluster, report) share."""

import logging as logging_std
import os

from absl import flags
from absl import logging


class QuietLibraries(logging_std.Filter):
  """Drops INFO chatter of orbax and grain; keeps their warnings and errors."""

  def filter(self, record):
    noisy = any(f'{os.sep}{lib}{os.sep}' in record.pathname
                for lib in ('orbax', 'grain'))
    return record.levelno >= logging_std.WARNING or not noisy


def console_logging() -> None:
  """Progress on the console without --alsologtostderr, without the
  libraries' INFO lines. Call before app.run."""
  flags.FLAGS.set_default('logtostderr', True)
  logging.get_absl_handler().addFilter(QuietLibraries())
