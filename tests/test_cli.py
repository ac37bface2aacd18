"""The command line: bad input fails fast with one line; the workdir is safe;
runs resume after SIGKILL; a finished run is not retrained."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cdcjax import bench
from cdcjax import config_validation
from cdcjax import workdir as workdir_lib
from configs import digits_cdc

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = 'configs/digits_cdc.py:tiny'


def _run(args, env_devices=1, **kwargs):
  env = dict(os.environ, JAX_NUM_CPU_DEVICES=str(env_devices),
             JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', 'cdcjax.main', *args],
                        cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                        timeout=600, **kwargs)


def _error_lines(result):
  return [l for l in result.stderr.splitlines() if 'error' in l.lower()]


def _snapshot(path):
  out = {}
  for root, _, files in os.walk(path):
    for name in files:
      full = os.path.join(root, name)
      with open(full, 'rb') as f:
        out[os.path.relpath(full, path)] = f.read()
  return out


@pytest.mark.parametrize('field,value,message', [
    ('loss.temperature', '0.0', 'config.loss.temperature=0.0'),
    ('loss.cluster_temperature', '-1.0', 'config.loss.cluster_temperature'),
    ('num_clusters', '1', 'config.num_clusters=1'),
    ('batch_size', '66', 'divisible by the device count 4'),
])
def test_bad_values_fail_fast_and_leave_workdir_alone(tmp_path, field, value,
                                                      message):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  (workdir / 'keep.txt').write_text('user data')
  before = _snapshot(workdir)
  result = _run([f'--config={TINY}', f'--workdir={workdir}',
                 f'--config.{field}={value}'], env_devices=4)
  assert result.returncode != 0
  errors = _error_lines(result)
  assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
  assert 'Traceback' not in result.stderr
  assert _snapshot(workdir) == before


def test_missing_config_file(tmp_path):
  result = _run(['--config=configs/no_such_config.py',
                 f'--workdir={tmp_path}/run'])
  assert result.returncode != 0
  assert 'no_such_config.py' in result.stderr
  assert 'Traceback' not in result.stderr
  assert not os.path.exists(tmp_path / 'run')


def test_unknown_field(tmp_path):
  result = _run([f'--config={TINY}', f'--workdir={tmp_path}/run',
                 '--config.loss.temprature=0.5'])
  assert result.returncode != 0
  assert 'temprature' in result.stderr
  assert 'Traceback' not in result.stderr
  assert not os.path.exists(tmp_path / 'run')


def test_validate_names_fields():
  config = digits_cdc.get_config()
  config_validation.validate(config, 1)
  config.optimizer.name = 'lamb'
  with pytest.raises(config_validation.ConfigError, match='optimizer.name'):
    config_validation.validate(config, 1)
  config = digits_cdc.get_config()
  config.model.backbone = 'resnet19'
  with pytest.raises(config_validation.ConfigError, match='model.backbone'):
    config_validation.validate(config, 1)
  config = digits_cdc.get_config()
  config.data.pad = -2
  config_validation.validate(config, 1)  # A trim; its size is checked on load.
  config.data.pad = 2
  config_validation.validate(config, 1)  # Digits can be framed.
  config.data.name, config.data.path = 'folder', '/some/images'
  with pytest.raises(config_validation.ConfigError, match=r"data.pad=2.*'folder'"):
    config_validation.validate(config, 1)
  for balance in (0.0, 1.5):
    config = digits_cdc.get_config()
    config.loss.sinkhorn_balance = balance
    with pytest.raises(config_validation.ConfigError,
                       match=r'loss.sinkhorn_balance.*\(0, 1\]'):
      config_validation.validate(config, 1)
  config = digits_cdc.get_config()
  config.loss.sinkhorn_arithmetic = 'linear'
  with pytest.raises(config_validation.ConfigError,
                     match=r"loss.sinkhorn_arithmetic='linear'.*'log', 'exp'"):
    config_validation.validate(config, 1)
  config.loss.sinkhorn_arithmetic = 'exp'
  config_validation.validate(config, 1)
  config.loss.sinkhorn_balance = 0.5
  with pytest.raises(config_validation.ConfigError,
                     match=r"loss.sinkhorn_balance=0.5.*'exp'"):
    config_validation.validate(config, 1)
  config.loss.sinkhorn_balance = 1.0
  config.loss.sinkhorn_balance_final = 0.1
  config_validation.validate(config, 1)  # Never reached: final_from is 1.
  config.loss.sinkhorn_balance_final_from = 0.5
  with pytest.raises(config_validation.ConfigError,
                     match=r"loss.sinkhorn_balance_final=0.1.*'exp'"):
    config_validation.validate(config, 1)
  for field, value, allowed in (('sinkhorn_balance_final', 0.0, r'\(0, 1\]'),
                                ('sinkhorn_balance_final_from', 1.5,
                                 r'\[0, 1\]')):
    config = digits_cdc.get_config()
    config.loss[field] = value
    with pytest.raises(config_validation.ConfigError,
                       match=rf'loss.{field}={value}.*{allowed}'):
      config_validation.validate(config, 1)


def _records(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


@pytest.mark.e2e  # Two CLI runs: about a minute.
def test_tiny_end_to_end_then_rerun_does_not_retrain(tmp_path):
  workdir = str(tmp_path / 'run')
  result = _run([f'--config={TINY}', f'--workdir={workdir}'])
  assert result.returncode == 0, result.stderr[-3000:]
  records = _records(workdir)
  assert all('step' in r for r in records)
  evals = [r for r in records if r['split'] == 'eval']
  assert len(evals) == 1 and evals[0]['step'] == 12
  for key in ('acc', 'nmi', 'ari'):
    assert isinstance(evals[0][key], float) and -1 <= evals[0][key] <= 1
  assert evals[0]['num_examples'] == 1797
  assert 'steps/s' in result.stderr and 'ETA' in result.stderr

  checkpoints = _snapshot(os.path.join(workdir, 'checkpoints'))
  again = _run([f'--config={TINY}', f'--workdir={workdir}'])
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'already finished at step 12' in again.stderr
  assert 'step 4/12' not in again.stderr
  assert _records(workdir) == records
  assert _snapshot(os.path.join(workdir, 'checkpoints')) == checkpoints
  # The tiny CDC config also runs k-means and the latent statistics.
  assert set(evals[0]['kmeans_features']) == {'acc', 'nmi', 'ari',
                                              'cluster_size_entropy'}
  stats = evals[0]['latent_stats']
  assert len(stats['c_augmented']) == 2 and len(stats['w_same_class']) == 2
  assert 'latent_stats: c:' in result.stderr

  # The self-labeling stage starts from this run's checkpoint.
  selflabel = str(tmp_path / 'selflabel')
  result = _run(['--config=configs/digits_selflabel.py:tiny',
                 f'--workdir={selflabel}', f'--config.init_from={workdir}'])
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'Initialised weights from {workdir} (step 12)' in result.stderr
  evals = [r for r in _records(selflabel) if r['split'] == 'eval']
  assert evals[-1]['step'] == 12 and evals[-1]['evaluator'] == 'cluster_head'
  assert 'confident_fraction' in result.stderr


# Two CLI runs (40 s): slow; tests/test_cluster_head_input.py covers frozen
# backbones in-process.
@pytest.mark.slow
def test_cdc_heads_on_a_frozen_simclr_backbone(tmp_path):
  """The two-stage recipe end to end: a SimCLR-style run, then CDC's heads
  on its frozen backbone (configs/digits_cdc_on_simclr.py)."""
  simclr = str(tmp_path / 'simclr')
  result = _run(['--config=configs/digits_simclr.py:tiny',
                 f'--workdir={simclr}'])
  assert result.returncode == 0, result.stderr[-3000:]
  heads = str(tmp_path / 'heads')
  missing = _run(['--config=configs/digits_cdc_on_simclr.py:tiny',
                  f'--workdir={heads}'])
  assert missing.returncode != 0 and 'init_from' in missing.stderr
  assert not os.path.exists(heads)
  result = _run(['--config=configs/digits_cdc_on_simclr.py:tiny',
                 f'--workdir={heads}', f'--config.init_from={simclr}'])
  assert result.returncode == 0, result.stderr[-3000:]
  assert (f"Initialised weights from {simclr} (step 12); kept ['cluster_head']"
          ' fresh') in result.stderr
  evals = [r for r in _records(heads) if r['split'] == 'eval']
  assert evals[-1]['step'] == 12 and evals[-1]['evaluator'] == 'cluster_head'
  assert evals[-1]['num_examples'] == 1797


def test_workdir_from_before_a_new_config_field_resumes(tmp_path):
  """A run started before a field existed stored no value for it: at its
  default (the old behaviour) that is no change; at another value it is."""
  from cdcjax import train  # pylint: disable=g-import-not-at-top
  config = digits_cdc.get_config('tiny')
  stored = json.loads(config.to_json())
  del stored['model']['num_cluster_heads']
  del stored['cc']  # A whole new group of fields.
  (tmp_path / 'config.json').write_text(json.dumps(stored))
  workdir_lib.check_workdir_config(config, str(tmp_path))  # No error.

  config.model.num_cluster_heads = 3
  with pytest.raises(train.TrainingFailure,
                     match=r'fields: model\.num_cluster_heads\)'):
    workdir_lib.check_workdir_config(config, str(tmp_path))
  config.model.num_cluster_heads = 1
  config.loss.temperature = 0.7  # Present in both, changed: refused.
  with pytest.raises(train.TrainingFailure, match='loss.temperature'):
    workdir_lib.check_workdir_config(config, str(tmp_path))
  assert json.loads((tmp_path / 'config.json').read_text()) == stored


@pytest.mark.slow
def test_changed_config_is_refused_in_existing_workdir(tmp_path):
  workdir = str(tmp_path / 'run')
  assert _run([f'--config={TINY}', f'--workdir={workdir}']).returncode == 0
  before = _snapshot(workdir)
  result = _run([f'--config={TINY}', f'--workdir={workdir}',
                 '--config.loss.temperature=0.7'])
  assert result.returncode != 0
  assert 'loss.temperature' in _error_lines(result)[0]
  assert _snapshot(workdir) == before


@pytest.mark.slow  # Exact resume is tested in-process: tests/test_checkpoints.py.
def test_sigkill_then_resume(tmp_path):
  workdir = str(tmp_path / 'run')
  args = [f'--config={TINY}', f'--workdir={workdir}',
          '--config.total_steps=400', '--config.checkpoint_every_steps=10',
          '--config.log_every_steps=10']
  env = dict(os.environ, JAX_NUM_CPU_DEVICES='1', JAX_PLATFORMS='cpu')
  proc = subprocess.Popen([sys.executable, '-m', 'cdcjax.main', *args],
                          cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  checkpoints = os.path.join(workdir, 'checkpoints')
  deadline = time.time() + 300
  try:
    while time.time() < deadline:
      done = [d for d in os.listdir(checkpoints)] if os.path.isdir(
          checkpoints) else []
      if any(d.isdigit() and int(d) >= 20 for d in done):
        break
      assert proc.poll() is None, 'training ended before it could be killed'
      time.sleep(0.2)
    else:
      pytest.fail('no checkpoint appeared')
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  assert not any(r['split'] == 'eval' for r in _records(workdir))

  result = _run(args)
  assert result.returncode == 0, result.stderr[-3000:]
  resumed = [l for l in result.stderr.splitlines()
             if 'Resumed from checkpoint at step' in l]
  assert len(resumed) == 1
  step = int(resumed[0].split('at step ')[1].split()[0])
  assert 20 <= step < 400
  evals = [r for r in _records(workdir) if r['split'] == 'eval']
  assert [r['step'] for r in evals] == [400]


@pytest.mark.e2e  # The in-process twin: tests/test_faults.py.
def test_sigterm_saves_that_step_and_exits_75_without_a_traceback(tmp_path):
  workdir = str(tmp_path / 'run')
  args = [f'--config={TINY}', f'--workdir={workdir}',
          '--config.total_steps=2000', '--config.checkpoint_every_steps=1000',
          '--config.log_every_steps=10']
  env = dict(os.environ, JAX_NUM_CPU_DEVICES='1', JAX_PLATFORMS='cpu')
  log = tmp_path / 'stderr.txt'
  with open(log, 'w') as stderr_file:
    proc = subprocess.Popen([sys.executable, '-m', 'cdcjax.main', *args],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=stderr_file)
  metrics = os.path.join(workdir, 'metrics.jsonl')
  deadline = time.time() + 300
  # The signal comes once a train record of step 20 or later is written.
  while time.time() < deadline and not (
      os.path.exists(metrics) and '"step": 2' in open(metrics).read()):
    assert proc.poll() is None, 'training ended before the signal'
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  proc.wait(timeout=300)
  stderr = log.read_text()
  assert proc.returncode == 75, stderr[-3000:]
  assert 'Traceback' not in stderr
  stopped = [r for r in _records(workdir) if r['split'] == 'stopped']
  assert len(stopped) == 1 and stopped[0]['reason'] == 'SIGTERM'
  step = stopped[0]['step']
  assert 20 <= step < 1000
  assert sorted(int(d) for d in os.listdir(os.path.join(
      workdir, 'checkpoints')) if d.isdigit()) == [step]
  assert f'stopped by SIGTERM at step {step}' in stderr


def test_divergence_stops_with_a_clear_message(tmp_path):
  workdir = str(tmp_path / 'run')
  result = _run([f'--config={TINY}', f'--workdir={workdir}',
                 '--config.optimizer.learning_rate=1e30',
                 '--config.total_steps=40'])
  assert result.returncode == 2, result.stderr[-3000:]
  errors = _error_lines(result)
  assert len(errors) == 1 and 'non-finite loss at step' in errors[0]
  # Diverged before the first save (every 4 steps): no 'step None'.
  assert 'No checkpoint had been saved yet' in errors[0], errors[0]
  assert 'Traceback' not in result.stderr
  # bench ablations reads this real message as a divergence, with its step.
  step = errors[0].split('non-finite loss at step ')[1].split()[0]
  assert (f'diverged in 1 of 1 runs (non-finite loss at step {step})' in
          bench.ablation_row('row', {'failure': errors[0], 'wall_s': 1.0}))


# A NaN gradient with a finite loss (a loss's edge) stops the run the same way.
@pytest.mark.parametrize('metric, message', [
    ('loss', 'non-finite loss at step'),
    ('grad_norm', 'non-finite gradient norm at step')])
def test_divergence_after_a_save_names_and_keeps_that_checkpoint(
    tmp_path, monkeypatch, metric, message):
  from cdcjax import train  # pylint: disable=g-import-not-at-top
  config = digits_cdc.get_config('tiny')  # Saves and logs every 4 steps.
  real_step = train.Trainer.step
  calls = []

  def step_that_diverges_at_6(self, batch):
    metrics = real_step(self, batch)
    calls.append(1)
    return {**metrics, metric: float('nan')} if len(calls) >= 6 else metrics

  monkeypatch.setattr(train.Trainer, 'step', step_that_diverges_at_6)
  workdir = str(tmp_path / 'run')
  with pytest.raises(train.TrainingFailure,
                     match=message + r' 8 .*The last good '
                     r'checkpoint is step 4 in ') as failure:
    train.train_and_evaluate(config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['4']
  # bench ablations counts either stop as a divergence, named as such.
  assert (f'diverged in 1 of 1 runs ({message} 8)' in bench.ablation_row(
      'row', {'failure': str(failure.value), 'wall_s': 1.0}))


def test_self_label_needs_a_trained_workdir(tmp_path):
  result = _run(['--config=configs/digits_selflabel.py:tiny',
                 f'--workdir={tmp_path}/run'])
  assert result.returncode != 0
  assert 'config.init_from' in _error_lines(result)[0]
  (tmp_path / 'empty').mkdir()
  result = _run(['--config=configs/digits_selflabel.py:tiny',
                 f'--workdir={tmp_path}/run2',
                 f'--config.init_from={tmp_path}/empty'])
  assert result.returncode != 0 and 'holds no checkpoints' in result.stderr
  assert not os.path.exists(tmp_path / 'run2')


def test_missing_data_file_fails_before_work(tmp_path):
  result = _run(['--config=configs/usps_cdc.py:tiny', f'--workdir={tmp_path}/r',
                 f'--config.data.path={tmp_path}/nothing.npz'])
  assert result.returncode != 0
  errors = _error_lines(result)
  assert len(errors) == 1 and 'nothing.npz' in errors[0]
  assert not os.path.exists(tmp_path / 'r')


SHARED_DATA = os.path.join(REPO_ROOT, '..', 'shared', 'datasets')


@pytest.mark.skipif(not os.path.exists(os.path.join(SHARED_DATA, 'usps.npz')),
                    reason='../shared/datasets/usps.npz is not on this machine')
def test_usps_tiny_trains_on_train_split_and_scores_test_split(tmp_path):
  workdir = str(tmp_path / 'usps')
  result = _run(['--config=configs/usps_cc.py:tiny', f'--workdir={workdir}',
                 f'--config.data.path={SHARED_DATA}/usps.npz'])
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'usps:train (7291 images)' in result.stderr
  evals = [r for r in _records(workdir) if r['split'] == 'eval']
  assert evals[-1]['num_examples'] == 2007  # The whole test split.
