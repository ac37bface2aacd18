"""Workdir files go through etils' epath (as Orbax's checkpoints do), so a
gs:// workdir works; tested through that layer on local paths, including the
rewrite mode that object stores (which cannot append) use."""

import json

from etils import epath

from cdcjax import checkpoints
from cdcjax import recipes
from cdcjax import train
from cdcjax import workdir as workdir_lib


def test_object_store_paths_are_kept_as_uris(tmp_path, monkeypatch):
  assert str(checkpoints.workdir_path('gs://bucket/runs/a')) == (
      'gs://bucket/runs/a')
  monkeypatch.chdir(tmp_path)
  assert checkpoints.workdir_path('run') == epath.Path(tmp_path / 'run')
  assert not workdir_lib.MetricsWriter('gs://bucket/runs/a/metrics.jsonl').appends
  assert workdir_lib.MetricsWriter(tmp_path / 'metrics.jsonl').appends


def test_metrics_rewrite_mode_keeps_a_resumed_runs_records(tmp_path):
  path = tmp_path / 'metrics.jsonl'
  for records in ([{'step': 1}, {'step': 2}], [{'step': 3}]):  # A resume.
    writer = workdir_lib.MetricsWriter(path)
    writer.appends = False  # As for gs://: each write rewrites the file.
    for record in records:
      writer.write(record)
  appended = workdir_lib.MetricsWriter(tmp_path / 'appended.jsonl')
  for step in (1, 2, 3):
    appended.write({'step': step})
  assert path.read_text() == (tmp_path / 'appended.jsonl').read_text()
  assert [json.loads(l)['step'] for l in path.read_text().splitlines()] == [
      1, 2, 3]


def test_a_run_writes_its_workdir_through_epath(tmp_path, monkeypatch):
  """Every workdir file (config, metrics, checkpoints) of a tiny run is
  written through epath.Path: the builtin open is not used for them."""
  written = []
  original = epath.Path.write_text

  def recording_write_text(self, *args, **kwargs):
    written.append(self.name)
    return original(self, *args, **kwargs)

  monkeypatch.setattr(type(epath.Path(tmp_path)), 'write_text',
                      recording_write_text)
  config = recipes.digits('tiny')
  config.total_steps = 2
  config.checkpoint_every_steps = 2
  config.evaluators = ('cluster_head',)
  train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert 'config.json' in written
  assert (tmp_path / 'run' / 'metrics.jsonl').exists()
  assert (tmp_path / 'run' / 'checkpoints' / '2').is_dir()
