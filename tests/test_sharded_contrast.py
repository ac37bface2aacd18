"""The per-shard instance contrast (losses.info_nce with a mesh) gives the
dense loss and gradient, and it is what the trainer's step runs: a gather and a
reduce-scatter instead of the dense matrix's row permutes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from cdcjax import aot
from cdcjax import recipes
from cdcjax import losses
from cdcjax import train

pytestmark = pytest.mark.skipif(
    jax.device_count() < 8, reason='needs 8 devices; set JAX_NUM_CPU_DEVICES=8 '
    '(tests/conftest.py does)')


def _pair(batch=32, dim=12, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(batch, dim)).astype(np.float32),
          rng.normal(size=(batch, dim)).astype(np.float32))


def _value_and_grads(loss_fn, mesh, *arrays):
  if mesh is not None:
    sharding = NamedSharding(mesh, P(mesh.axis_names))
    arrays = [jax.device_put(a, sharding) for a in arrays]
  grad_fn = jax.value_and_grad(loss_fn, argnums=tuple(range(len(arrays))))
  return jax.device_get(jax.jit(grad_fn)(*arrays))


@pytest.mark.parametrize('num_devices', [2, 8])
@pytest.mark.parametrize('normalise', [False, True])
def test_sharded_info_nce_equals_the_dense_loss_and_gradient(num_devices,
                                                             normalise):
  mesh = train.make_mesh(jax.devices()[:num_devices])
  z_a, z_b = _pair()
  contrast = losses.nt_xent if normalise else losses.info_nce
  dense, dense_grads = _value_and_grads(
      lambda a, b: contrast(a, b, 0.3), None, z_a, z_b)
  sharded, sharded_grads = _value_and_grads(
      lambda a, b: contrast(a, b, 0.3, mesh), mesh, z_a, z_b)
  np.testing.assert_allclose(sharded, dense, rtol=1e-6)
  for got, want in zip(sharded_grads, dense_grads):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  assert np.abs(dense_grads[0]).max() > 1e-3  # Not a vacuous comparison.


def test_sharded_info_nce_matches_numpy_and_its_limit():
  """Against the paper's definition directly, and the known limit: with
  orthogonal unit views equal across a and b, the loss goes to 0 as tau
  shrinks (the positive dominates every row)."""
  mesh = train.make_mesh()
  z_a, z_b = _pair(batch=16, dim=5, seed=3)
  z = np.concatenate([z_a, z_b]).astype(np.float64)
  logits = z @ z.T / 0.5
  np.fill_diagonal(logits, -np.inf)
  log_prob = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  batch = len(z_a)
  positive = np.r_[np.arange(batch) + batch, np.arange(batch)]
  expected = -log_prob[np.arange(2 * batch), positive].mean()
  got, _ = _value_and_grads(lambda a, b: losses.info_nce(a, b, 0.5, mesh),
                            mesh, z_a, z_b)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  eye = np.eye(16, dtype=np.float32)
  limit, _ = _value_and_grads(lambda a, b: losses.info_nce(a, b, 0.01, mesh),
                              mesh, eye, eye)
  assert float(limit) < 1e-6


def test_peer_losses_take_the_mesh_for_their_instance_contrast():
  """cc_loss and cd_loss: the cluster/feature contrast (rows = clusters) stays
  dense; the whole loss is unchanged by passing the mesh."""
  mesh = train.make_mesh()
  z_a, z_b = _pair()
  rng = np.random.default_rng(1)
  y_a, y_b = (jax.nn.softmax(rng.normal(size=(32, 10)).astype(np.float32))
              for _ in range(2))
  for fn in (losses.cc_loss, losses.cd_loss):
    dense = fn(z_a, z_b, y_a, y_b)
    sharded, _ = _value_and_grads(
        lambda a, b: fn(a, b, y_a, y_b, mesh=mesh).total, mesh, z_a, z_b)
    np.testing.assert_allclose(sharded, dense.total, rtol=1e-5)


def test_batch_that_does_not_divide_over_the_mesh_is_an_error():
  mesh = train.make_mesh()
  z_a, z_b = _pair(batch=12)
  with pytest.raises(ValueError, match='12 rows does not divide over the 8'):
    losses.info_nce(jnp.asarray(z_a), jnp.asarray(z_b), 0.5, mesh)


def _train_step_collectives(sharded_contrast: bool) -> tuple[str, dict]:
  config = recipes.set_method(recipes.digits('tiny'), 'cdc',
                                    'tiny')
  config.batch_size = 64
  config.loss.sharded_contrast = sharded_contrast
  trainer = train.Trainer(config, train.make_mesh(), (8, 8, 1), 1797,
                          abstract=True)
  batch, _ = trainer.abstract_batches()
  jaxpr = str(jax.make_jaxpr(trainer.train_step)(trainer.state, batch))
  hlo = trainer.train_step.lower(trainer.state, batch).compile().as_text()
  return jaxpr, aot.collectives(hlo)


def test_the_trainer_step_runs_the_contrast_per_shard():
  jaxpr, collectives = _train_step_collectives(True)
  assert 'shard_map' in jaxpr
  # The keys' gradient is reduce-scattered back to the shards, and no row
  # permutes build [z_a; z_b] across devices.
  assert collectives['reduce-scatter']['count'] >= 1
  assert 'collective-permute' not in collectives
  # The switch is real: the compiler-partitioned dense matrix permutes rows.
  jaxpr, collectives = _train_step_collectives(False)
  assert 'shard_map' not in jaxpr
  assert 'reduce-scatter' not in collectives
  assert collectives['collective-permute']['count'] >= 1
