"""Two-stage runs in one workdir (cdcjax/stages.py, config.pretrain): stage 1
trains the backbone, stage 2 trains CDC's heads on it, a rerun resumes in
either stage without repeating stage 1."""

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from cdcjax import checkpoints
from cdcjax import config_validation
from cdcjax import stages
from cdcjax import train
from configs import digits_cdc_two_stage
from tests.saved_state import latest_saved_state


def _config(**overrides):
  config = digits_cdc_two_stage.get_config('tiny')
  config.evaluators = ('cluster_head',)
  for key, value in overrides.items():
    if isinstance(value, dict):
      config[key].update(value)
    else:
      config[key] = value
  return config


def _recorded_runs(monkeypatch):
  """The workdirs train_and_evaluate is called with, in order."""
  calls = []
  real = train.train_and_evaluate

  def recording(config, workdir, mesh=None):
    calls.append((config.method, workdir))
    return real(config, workdir, mesh=train.make_mesh(jax.devices()[:1]))

  monkeypatch.setattr(train, 'train_and_evaluate', recording)
  return calls


def test_two_stages_in_one_workdir_then_resume_skips_stage_1(tmp_path,
                                                             monkeypatch):
  calls = _recorded_runs(monkeypatch)
  config = _config()
  config_validation.validate(config, 1)
  result = stages.run(config, str(tmp_path))
  stage_1_dir = str(tmp_path / stages.PRETRAIN_DIR)
  assert calls == [('simclr', stage_1_dir), ('cdc', str(tmp_path))]
  assert 0 <= result['acc'] <= 1

  step_1, stage_1 = latest_saved_state(tmp_path / stages.PRETRAIN_DIR)
  step_2, stage_2 = latest_saved_state(tmp_path)
  assert step_1 == config.pretrain.total_steps
  assert step_2 == config.total_steps
  # Stage 2 trained on stage 1's backbone, frozen: weights and BatchNorm
  # statistics unchanged; its cluster head exists only in stage 2.
  for collection in ('params', 'batch_stats'):
    for a, b in zip(jax.tree.leaves(stage_1[collection]['backbone']),
                    jax.tree.leaves(stage_2[collection]['backbone'])):
      np.testing.assert_array_equal(a, b)
  assert 'cluster_head' not in stage_1['params']
  assert 'cluster_head' in stage_2['params']
  assert (tmp_path / 'feature_cache').is_dir()  # Stage 2 trained from it.

  # Longer stage 2: the rerun continues it and leaves stage 1 alone.
  calls.clear()
  longer = _config(total_steps=config.total_steps + 4)
  stages.run(longer, str(tmp_path))
  assert calls == [('cdc', str(tmp_path))]
  assert latest_saved_state(tmp_path)[0] == config.total_steps + 4
  assert latest_saved_state(tmp_path / stages.PRETRAIN_DIR)[0] == step_1


def _save_step(workdir, step):
  manager = checkpoints.open_manager(str(workdir), 1)
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave({'w': np.zeros(2)})))
  manager.wait_until_finished()
  manager.close()


def test_the_checkpoints_say_which_stage_a_rerun_is_in(tmp_path):
  config = _config()  # Stage 1: 8 steps.
  stage_1_dir = tmp_path / stages.PRETRAIN_DIR
  assert not stages.stage_1_is_done(config, str(tmp_path))
  _save_step(stage_1_dir, 4)  # Stage 1 interrupted: it resumes.
  assert not stages.stage_1_is_done(config, str(tmp_path))
  _save_step(stage_1_dir, 8)
  assert stages.stage_1_is_done(config, str(tmp_path))
  other = tmp_path / 'other'
  _save_step(other, 2)  # Stage 2 has started: stage 1 is not looked at.
  assert stages.stage_1_is_done(config, str(other))


def test_pretrain_config_trains_the_backbone_and_scores_cheaply():
  config = _config()
  stage_1 = stages.pretrain_config(config)
  assert (stage_1.method, stage_1.total_steps) == ('simclr', 8)
  assert not stage_1.model.freeze_backbone
  assert stage_1.data.cached_views == 0
  assert stage_1.evaluators == ('kmeans_features',)
  assert not stage_1.pretrain.method
  assert config.model.freeze_backbone  # The config itself is unchanged.
  second = stages.main_stage_config(config, '/runs/a')
  assert second.init_from == '/runs/a/pretrain'


@pytest.mark.parametrize('overrides,match', [
    (dict(pretrain=dict(method='cc', total_steps=8)), "pretrain.method='cc'"),
    (dict(pretrain=dict(method='simclr', total_steps=0)),
     'pretrain.total_steps=0'),
    (dict(init_from='/some/run'), 'stage 2 starts from stage 1'),
    (dict(init_fresh=()), "'cluster_head' in init_fresh"),
])
def test_bad_two_stage_configs_are_refused(overrides, match):
  config = _config(**overrides)
  with pytest.raises(config_validation.ConfigError, match=match):
    config_validation.validate(config, 1)


def test_summary_names_scores_outputs_and_next_steps(tmp_path):
  config = _config()
  (tmp_path / 'report').mkdir()
  (tmp_path / 'report' / 'index.html').write_text('')
  text = stages.summary(config, str(tmp_path), dict(
      evaluator='cluster_head', acc=0.96, nmi=0.93, ari=0.92))
  assert 'Result (cluster_head): ACC 0.9600  NMI 0.9300  ARI 0.9200' in text
  assert f'Outputs in {tmp_path}' in text
  assert 'report/index.html' in text and 'pretrain/ (stage 1, simclr)' in text
  assert 'Next:' in text
  unlabelled = stages.summary(_config(pretrain=dict(method='', total_steps=0)),
                            str(tmp_path), dict(evaluator='cluster_head'))
  assert 'no labels' in unlabelled and 'pretrain/' not in unlabelled
