"""What a run keeps in its workdir besides checkpoints: config.json (and the
check that a rerun's config may resume it) and metrics.jsonl."""

import json

import jax
from etils import epath

from cdcjax import config_defaults
from cdcjax.errors import TrainingFailure

# Fields that may differ when resuming a run (they do not change what a step
# computes, or they extend the run). The evaluation fields among them let a
# finished run be scored again with other evaluators.
RESUMABLE_CHANGES = ('total_steps', 'num_epochs', 'log_every_steps',
                     'eval_every_steps', 'checkpoint_every_steps',
                     'keep_checkpoints', 'keep_checkpoint_every_steps',
                     'eval_batch_size', 'data.num_threads', 'evaluators',
                     'eval_num_clusters', 'report.enabled',
                     'report.tensorboard', 'report.grid_images',
                     'report.strip_images', 'report.max_clusters',
                     'report.map_points')


class MetricsWriter:
  """Appends one JSON object per line to DIR/metrics.jsonl (process 0 only).

  Through etils' epath, as Orbax's checkpoints, so a gs:// workdir works.
  Object stores cannot append: each record rewrites the file (small: one
  line per log interval).
  """

  def __init__(self, path):
    self.path = epath.Path(path)
    self.enabled = jax.process_index() == 0
    self.appends = '://' not in str(path)  # Local files append.
    self._lines = None

  def write(self, record: dict):
    if not self.enabled:
      return
    line = json.dumps(record) + '\n'
    if self.appends:
      with self.path.open('a') as f:
        f.write(line)
      return
    if self._lines is None:  # Keep a resumed run's earlier records.
      self._lines = (self.path.read_text().splitlines(keepends=True)
                     if self.path.exists() else [])
    self._lines.append(line)
    self.path.write_text(''.join(self._lines))


def check_workdir_config(config, workdir: str) -> None:
  """Refuses a workdir whose stored config differs in a field that changes
  what training computes; stores the config on a fresh start."""
  path = epath.Path(workdir) / 'config.json'
  current = json.loads(config.to_json())
  if path.exists():
    stored = json.loads(path.read_text())
    # A field added to cdcjax after the run started is absent from the stored
    # config; new fields default to the old behaviour, so one still at its
    # default is no change.
    defaults = json.loads(config_defaults.base_config().to_json())
    differing = [k for k in _flat_diff(stored, current)
                 if k not in RESUMABLE_CHANGES and not (
                     _lookup(stored, k) is _MISSING and
                     _lookup(current, k) == _lookup(defaults, k))]
    if differing:
      raise TrainingFailure(
          f'{workdir} holds a run with a different config (fields: '
          f'{", ".join(differing)}); use a new --workdir or the same config')
  elif jax.process_index() == 0:
    path.write_text(config.to_json(indent=2))


_MISSING = object()


def _lookup(tree, dotted_key):
  for part in dotted_key.split('.'):
    if not isinstance(tree, dict) or part not in tree:
      return _MISSING
    tree = tree[part]
  return tree


def _flat_diff(a, b, prefix=''):
  keys = set(a) | set(b) if isinstance(a, dict) and isinstance(b, dict) else ()
  if not keys:
    return [] if a == b else [prefix.rstrip('.')]
  out = []
  for k in sorted(keys):
    if k not in a or k not in b:
      out.append(prefix + k)
    else:
      out.extend(_flat_diff(a[k], b[k], f'{prefix}{k}.'))
  return out
