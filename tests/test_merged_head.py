"""Over-clustering: a head with more clusters than wanted, merged without
labels by the cluster_head_merged evaluator (cdcjax.evaluators.merge_clusters),
through the trainer's evaluation, the config checks and re-evaluation."""

import jax
import numpy as np
import pytest

from cdcjax import config_validation
from cdcjax import recipes
from cdcjax import data
from cdcjax import evaluation
from cdcjax import evaluators
from cdcjax import metrics as metrics_lib
from cdcjax import train


def _config(heads=1):
  config = recipes.set_method(recipes.digits('tiny'), 'cdc',
                                    'tiny')
  config.num_clusters = 6
  config.eval_num_clusters = 3
  config.model.num_cluster_heads = heads
  config.evaluators = ('cluster_head_merged', 'cluster_head',
                       'kmeans_features')
  config.batch_size = 32
  return config


@pytest.mark.parametrize('heads', [1, 2])
def test_evaluation_merges_the_head_into_eval_num_clusters(heads):
  config = _config(heads)
  config_validation.validate(config, 1)
  source = data.load_digits(8)
  trainer = train.Trainer(config, train.make_mesh(jax.devices()[:1]),
                          source.images.shape[1:], len(source))
  trainer.step(data.train_dataset(source, batch_size=32, seed=0,
                                  aug_config=config.aug)[0])
  eval_source = data.ArraySource(source.images[:128], source.labels[:128],
                                 10, 'digits')
  out = trainer.embed(eval_source)
  # The evaluator's input: CDC's posterior softmax(c_hat / tau_c).
  c_hat = out['c'] / np.linalg.norm(out['c'], axis=1, keepdims=True)
  logits = c_hat / config.loss.cluster_temperature
  posterior = np.exp(logits - logits.max(1, keepdims=True))
  posterior /= posterior.sum(1, keepdims=True)
  np.testing.assert_allclose(
      evaluation.cluster_probabilities(config, out['c']), posterior,
      rtol=1e-5, atol=1e-6)
  expected = evaluators.merge_clusters(posterior, 3)
  result = trainer.evaluate(eval_source)
  assert result['evaluator'] == 'cluster_head_merged'
  np.testing.assert_array_equal(trainer.last_predictions, expected)
  assert len(result['cluster_sizes']) == 3  # Hungarian ACC on 3 clusters.
  assert result['acc'] == pytest.approx(
      metrics_lib.cluster_accuracy(expected, eval_source.labels, 3))
  # The head itself keeps its 6 clusters (many-to-one ACC); k-means uses 3.
  raw = metrics_lib.clustering_metrics(np.argmax(out['c'], 1),
                                       eval_source.labels, 6)
  assert result['cluster_head']['acc'] == pytest.approx(raw['acc'])
  assert result['kmeans_features']['cluster_size_entropy'] == pytest.approx(
      metrics_lib.clustering_metrics(
          evaluators.kmeans(out['features'], 3, config.seed),
          eval_source.labels, 3)['cluster_size_entropy'])
  if heads > 1:
    merged_acc = result['cluster_heads']['merged_acc']
    assert len(merged_acc) == heads
    selected = result['cluster_heads']['selected']
    assert merged_acc[selected] == pytest.approx(result['acc'], abs=1e-4)


@pytest.mark.parametrize('field,value,evaluator_list,message', [
    ('eval_num_clusters', 7, ('cluster_head',), r'\[2, num_clusters=6\]'),
    ('eval_num_clusters', 1, ('cluster_head',), r'\[2, num_clusters=6\]'),
    ('eval_num_clusters', 0, ('cluster_head_merged',), r'\[2, num_clusters\)'),
    ('eval_num_clusters', 6, ('cluster_head_merged',), r'\[2, num_clusters\)'),
])
def test_bad_merge_settings_are_refused(field, value, evaluator_list, message):
  config = _config()
  config[field] = value
  config.evaluators = evaluator_list
  with pytest.raises(config_validation.ConfigError,
                     match=f'config.{field}={value}.*{message}'):
    config_validation.validate(config, 1)


def test_a_finished_run_is_evaluated_again_with_other_evaluators(tmp_path):
  config = _config()
  config.total_steps = 2
  config.evaluators = ('cluster_head',)
  workdir = str(tmp_path / 'run')
  first = train.train_and_evaluate(config, workdir)
  assert len(first['cluster_sizes']) == 6
  config.evaluators = ('cluster_head_merged', 'cluster_head')
  again = train.train_and_evaluate(config, workdir)
  assert again['evaluator'] == 'cluster_head_merged'
  assert len(again['cluster_sizes']) == 3
  assert again['cluster_head']['acc'] == pytest.approx(first['acc'])
