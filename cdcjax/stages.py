"""Two-stage runs in one workdir: an instance-level stage, then the config's
method on the backbone it trained (config.pretrain).

  WORKDIR/pretrain/   stage 1: config.pretrain.method (e.g. simclr) for
                      config.pretrain.total_steps steps, a run of its own
  WORKDIR/            stage 2: the config as written, with
                      init_from=WORKDIR/pretrain

Each stage is an ordinary run, so either resumes at its newest checkpoint.
Which stage a rerun is in is read from the checkpoints: any checkpoint in
WORKDIR/checkpoints means stage 2 has started (stage 1 is not run again); a
stage-1 checkpoint at its last step means stage 1 is done.
"""

import os

from absl import logging
import ml_collections

from cdcjax import checkpoints
from cdcjax import train

PRETRAIN_DIR = 'pretrain'
# Methods stage 1 may run: they train the backbone and the instance head that
# stage 2 loads (its cluster head starts fresh).
PRETRAIN_METHODS = ('simclr',)


def pretrain_config(config: ml_collections.ConfigDict
                    ) -> ml_collections.ConfigDict:
  """Stage 1's config: the same data, model, augmentation and optimiser, the
  pretraining method, its own step count, a trainable backbone and a cheap
  evaluation (k-means on the backbone's features, no report)."""
  c = config.copy_and_resolve_references()
  c.method = config.pretrain.method
  c.total_steps = config.pretrain.total_steps
  c.evaluators = ('kmeans_features',)
  c.eval_every_steps = 0
  c.model.freeze_backbone = False
  c.data.cached_views = 0
  c.init_from, c.init_fresh, c.init_skip = '', (), ()
  c.report.enabled = False
  c.pretrain.method, c.pretrain.total_steps = '', 0
  return c


def main_stage_config(config: ml_collections.ConfigDict, workdir: str
                      ) -> ml_collections.ConfigDict:
  """Stage 2's config: the config as written, starting from stage 1."""
  c = config.copy_and_resolve_references()
  c.init_from = _stage_1_dir(workdir)
  return c


def stage_1_is_done(config: ml_collections.ConfigDict, workdir: str) -> bool:
  """What the checkpoints say: stage 2 has started (a checkpoint in
  WORKDIR/checkpoints), or stage 1 saved its last step."""
  if checkpoints.latest_step(workdir) is not None:
    return True
  stage_1_steps = checkpoints.latest_step(_stage_1_dir(workdir)) or 0
  return stage_1_steps >= config.pretrain.total_steps


def _stage_1_dir(workdir: str) -> str:
  return os.path.join(str(checkpoints.workdir_path(workdir)), PRETRAIN_DIR)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config` in `workdir`, first its pretraining stage if it has one;
  returns the final evaluation."""
  if not config.pretrain.method:
    return train.train_and_evaluate(config, workdir)
  if stage_1_is_done(config, workdir):
    logging.info('Stage 1 (%s) is done in %s.', config.pretrain.method,
                 _stage_1_dir(workdir))
  else:
    logging.info('Stage 1 of 2: %s for %d steps in %s.',
                 config.pretrain.method, config.pretrain.total_steps,
                 _stage_1_dir(workdir))
    train.train_and_evaluate(pretrain_config(config), _stage_1_dir(workdir))
  logging.info('Stage 2 of 2: %s on the backbone of stage 1, in %s.',
               config.method, workdir)
  return train.train_and_evaluate(main_stage_config(config, workdir), workdir)


def summary(config, workdir: str, result: dict) -> str:
  """What a finished run prints last: its scores, where its outputs are and
  what to try next."""
  if 'acc' in result:
    scores = (f'ACC {result["acc"]:.4f}  NMI {result["nmi"]:.4f}  '
              f'ARI {result["ari"]:.4f}')
  else:
    scores = 'no labels to score against'
  outputs = ['metrics.jsonl (training and evaluation records)',
             'checkpoints/ (rerun the same command to resume)']
  if os.path.exists(os.path.join(workdir, 'report', 'index.html')):
    outputs.append('report/index.html (the clusters as images)')
  if os.path.exists(os.path.join(workdir, 'assignments.csv')):
    outputs.append('assignments.csv (each image\'s cluster)')
  if config.pretrain.method:
    outputs.append(f'{PRETRAIN_DIR}/ (stage 1, {config.pretrain.method})')
  return '\n'.join([
      f'Result ({result["evaluator"]}): {scores}',
      f'Outputs in {workdir}: ' + '; '.join(outputs),
      'Next: other datasets and methods in configs/ (README, "Results"); '
      'your own images: python -m cdcjax.cluster IMAGE_FOLDER '
      '--num_clusters=K --out=DIR'])
