"""TensorBoard events of a run: training and evaluation scalars and, at each
evaluation, a grid of every cluster's most confident images.

Written by process 0 under WORKDIR/tensorboard through tensorboardX (no
TensorFlow needed), when it is installed (pip install 'cdcjax[viz]') and
config.report.tensorboard is on:

  tensorboard --logdir WORKDIR
"""

import os

from absl import logging
import jax
import numpy as np

from cdcjax import checkpoints
from cdcjax import report

EVENTS_DIR = 'tensorboard'


def _scalars_of(record: dict, prefix: str):
  """(tag, value) for the numbers of a metrics record, nested dicts (other
  evaluators) one level down; lists (cluster sizes) are left out."""
  for key, value in record.items():
    if isinstance(value, bool):
      continue
    if isinstance(value, (int, float, np.floating, np.integer)):
      yield f'{prefix}/{key}', float(value)
    elif isinstance(value, dict):
      yield from _scalars_of(value, f'{prefix}/{key}')


class EventWriter:
  """No-op where disabled: other processes, tensorboardX missing (said once
  in the log), an object-store workdir (said once)."""

  def __init__(self, workdir, enabled: bool = True):
    self._writer = None
    if not enabled or jax.process_index() != 0:
      return
    if '://' in str(workdir):
      logging.warning('TensorBoard events are written to local workdirs only; '
                      'none for %s', workdir)
      return
    try:
      import tensorboardX  # pylint: disable=g-import-not-at-top
    except ImportError:
      logging.info("No TensorBoard events: tensorboardX is not installed (pip "
                   "install 'cdcjax[viz]').")
      return
    logdir = os.fspath(checkpoints.workdir_path(workdir) / EVENTS_DIR)
    self._writer = tensorboardX.SummaryWriter(logdir=logdir)

  @property
  def enabled(self) -> bool:
    return self._writer is not None

  def scalars(self, step: int, prefix: str, record: dict) -> None:
    if self._writer is None:
      return
    for tag, value in _scalars_of(record, prefix):
      self._writer.add_scalar(tag, value, step)
    self._writer.flush()

  def evaluation(self, step: int, trainer, eval_source, result: dict) -> None:
    """The evaluation's scalars and its cluster grid."""
    if self._writer is None:
      return
    self.scalars(step, 'eval', {k: v for k, v in result.items()
                                if k != 'evaluator'})
    predictions = trainer.last_predictions
    confidence = report.cluster_confidence(
        trainer.config, result['evaluator'], trainer.last_embeddings,
        predictions)
    grid = report.overview_grid(eval_source, predictions, confidence,
                                len(result['cluster_sizes']))
    self._writer.add_image('clusters', grid, step, dataformats='HWC')
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
