"""`config.init_fresh`: start from a trained run's weights but keep some
modules (a new cluster head) at their fresh initialisation."""

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from cdcjax import checkpoints
from cdcjax import config_validation
from cdcjax import recipes
from cdcjax import data
from cdcjax import train
from cdcjax.errors import TrainingFailure
from configs import digits_cdc


def _trainer(seed, config=None):
  config = config or digits_cdc.get_config('tiny')
  config.seed = seed
  source = data.load_digits(8)
  return train.Trainer(config, train.make_mesh(jax.devices()[:1]),
                       source.images.shape[1:], len(source))


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


def _same(a, b):
  a, b = _leaves(a), _leaves(b)
  return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _save(directory, state):
  manager = checkpoints.open_manager(str(directory), 1)
  manager.save(12, args=ocp.args.Composite(state=ocp.args.StandardSave(
      state)))
  manager.wait_until_finished()
  manager.close()


def test_fresh_modules_keep_their_initialisation(tmp_path):
  trained = _trainer(0).state
  _save(tmp_path, trained)
  new = _trainer(1).state
  assert not _same(new.params['backbone'], trained.params['backbone'])

  loaded = checkpoints.load_weights(str(tmp_path), new, ('cluster_head',))
  for collection in ('params', 'batch_stats'):
    ours, theirs, fresh = (getattr(s, collection) for s in (loaded, trained,
                                                            new))
    for name in ours:
      expected = fresh if name == 'cluster_head' else theirs
      assert _same(ours[name], expected[name]), (collection, name)
  assert not _same(loaded.params['cluster_head'], trained.params['cluster_head'])

  everything = checkpoints.load_weights(str(tmp_path), new)
  assert _same(everything.params, trained.params)

  with pytest.raises(TrainingFailure, match=r"\['cluster_hed'\].*allowed: .*"
                     r"'cluster_head'"):
    checkpoints.load_weights(str(tmp_path), new, ('cluster_hed',))

  # A converted backbone loads only the backbone: naming fresh heads there is
  # refused rather than silently meaningless.
  converted = tmp_path / 'converted'
  (converted / 'variables').mkdir(parents=True)
  with pytest.raises(TrainingFailure, match='converted backbone'):
    checkpoints.load_weights(str(converted), new, ('cluster_head',))


@pytest.mark.parametrize('field,value', [('init_fresh', ('cluster_head',)),
                                         ('init_skip', ('feature_predictor',))])
def test_init_fields_need_init_from(field, value):
  config = digits_cdc.get_config('tiny')
  config[field] = value
  with pytest.raises(config_validation.ConfigError, match=field):
    config_validation.validate(config, 1)
  config.init_from = '/some/run'
  config_validation.validate(config, 1)


def test_cdc_starts_from_an_instance_only_run(tmp_path):
  """The two-stage recipe: a SimCLR-style run has no cluster head; naming it
  in init_fresh loads the backbone and instance head and keeps a fresh one."""
  simclr = recipes.set_method(recipes.digits('tiny'), 'simclr',
                                    'tiny')
  trained = _trainer(0, simclr).state
  assert 'cluster_head' not in trained.params
  _save(tmp_path, trained)
  new = _trainer(1).state

  loaded = checkpoints.load_weights(str(tmp_path), new, ('cluster_head',))
  for name in ('backbone', 'instance_head'):
    assert _same(loaded.params[name], trained.params[name]), name
    assert _same(loaded.batch_stats[name], trained.batch_stats[name]), name
  assert _same(loaded.params['cluster_head'], new.params['cluster_head'])
  assert _same(loaded.batch_stats['cluster_head'],
               new.batch_stats['cluster_head'])
  # Without naming it, the missing cluster head is an error, not a silent
  # fresh start.
  with pytest.raises(TrainingFailure, match=r'missing.*cluster_head'):
    checkpoints.load_weights(str(tmp_path), new)


def test_fresh_head_may_have_another_shape_in_the_source(tmp_path):
  """A new number of clusters: the source's cluster head (K = 20) is replaced
  by a fresh one (K = 10) when named, and is a shape error otherwise."""
  config = digits_cdc.get_config('tiny')
  config.num_clusters = 20
  trained = _trainer(0, config).state
  _save(tmp_path, trained)
  new = _trainer(1).state
  loaded = checkpoints.load_weights(str(tmp_path), new, ('cluster_head',))
  assert _same(loaded.params['backbone'], trained.params['backbone'])
  assert _same(loaded.params['cluster_head'], new.params['cluster_head'])
  with pytest.raises(TrainingFailure, match='cluster_head.*has shape'):
    checkpoints.load_weights(str(tmp_path), new)


def test_cdc_heads_start_from_a_cd_run_without_its_predictor(tmp_path):
  """CD's checkpoint has a 'feature_predictor' that CDC's model lacks:
  init_skip leaves it unloaded, and the rest loads as from a SimCLR run."""
  cd = recipes.set_method(recipes.digits('tiny'), 'cd', 'tiny')
  trained = _trainer(0, cd).state
  assert 'feature_predictor' in trained.params
  _save(tmp_path, trained)
  new = _trainer(1).state

  loaded = checkpoints.load_weights(str(tmp_path), new, ('cluster_head',),
                                    ('feature_predictor',))
  for name in ('backbone', 'instance_head'):
    assert _same(loaded.params[name], trained.params[name]), name
    assert _same(loaded.batch_stats[name], trained.batch_stats[name]), name
  assert _same(loaded.params['cluster_head'], new.params['cluster_head'])
  assert 'feature_predictor' not in loaded.params
  # Without init_skip the extra module is an error naming it.
  with pytest.raises(TrainingFailure, match=r'unexpected.*feature_predictor'):
    checkpoints.load_weights(str(tmp_path), new, ('cluster_head',))
  # A skipped name the source does not have is an error listing its modules.
  with pytest.raises(TrainingFailure, match=r"\['predictor'\].*its modules: "
                     r".*'feature_predictor'"):
    checkpoints.load_weights(str(tmp_path), new, ('cluster_head',),
                             ('predictor',))


def test_cluster_head_names_every_head_of_a_multi_head_model(tmp_path):
  """The two-stage configs name 'cluster_head' only; with
  model.num_cluster_heads = 3 all three heads start fresh from a SimCLR run."""
  simclr = recipes.set_method(recipes.digits('tiny'), 'simclr',
                                    'tiny')
  trained = _trainer(0, simclr).state
  _save(tmp_path, trained)
  config = digits_cdc.get_config('tiny')
  config.model.num_cluster_heads = 3
  new = _trainer(1, config).state
  heads = ('cluster_head', 'cluster_head_1', 'cluster_head_2')
  assert set(heads) <= set(new.params)

  loaded = checkpoints.load_weights(str(tmp_path), new, ('cluster_head',))
  for name in heads:
    assert _same(loaded.params[name], new.params[name]), name
    assert _same(loaded.batch_stats[name], new.batch_stats[name]), name
  for name in ('backbone', 'instance_head'):
    assert _same(loaded.params[name], trained.params[name]), name
  # Naming every head is the same.
  every = checkpoints.load_weights(str(tmp_path), new, heads)
  assert _same(every.params, loaded.params)
