"""LARS against a NumPy port of MoCo v3's optimizer, under warm-up + cosine."""

import math

import ml_collections
import numpy as np
import optax

from cdcjax import optimizers


def _moco_v3_lars_step(params, grads, mus, lr, weight_decay, momentum,
                       trust_coefficient):
  """MoCo v3's LARS.step (moco-v3/moco/optimizer.py), one parameter group."""
  new_params, new_mus = {}, {}
  for name, p in params.items():
    dp = grads[name]
    if p.ndim > 1:  # Not a bias or a BatchNorm parameter.
      dp = dp + weight_decay * p
      param_norm, update_norm = np.linalg.norm(p), np.linalg.norm(dp)
      q = (trust_coefficient * param_norm / update_norm
           if param_norm > 0 and update_norm > 0 else 1.0)
      dp = dp * q
    mu = momentum * mus[name] + dp
    new_mus[name] = mu
    new_params[name] = p - lr * mu
  return new_params, new_mus


def _moco_v3_lr(base_lr, step, warmup_steps, total_steps):
  """moco-v3 main_moco.adjust_learning_rate, per iteration."""
  if step < warmup_steps:
    return base_lr * step / warmup_steps
  return base_lr * 0.5 * (1.0 + math.cos(
      math.pi * (step - warmup_steps) / (total_steps - warmup_steps)))


def test_lars_matches_moco_v3_for_several_steps():
  rng = np.random.default_rng(0)
  params = {'w': rng.normal(size=(5, 4)).astype(np.float32),
            'conv': rng.normal(size=(3, 3, 2, 4)).astype(np.float32),
            'zero': np.zeros((4, 3), np.float32),  # Trust ratio 1.
            'bias': rng.normal(size=(4,)).astype(np.float32),
            'bn_scale': np.ones((4,), np.float32)}
  total, warmup, base_lr = 10, 3, 0.3
  config = ml_collections.ConfigDict(dict(optimizer=dict(
      name='lars', learning_rate=base_lr, momentum=0.9, nesterov=False,
      weight_decay=1e-2, warmup_fraction=warmup / total,
      trust_coefficient=0.001)))
  tx = optimizers.make_optimizer(config, total)
  state = tx.init(params)
  jax_params = dict(params)
  ref_params, ref_mus = dict(params), {k: np.zeros_like(v)
                                       for k, v in params.items()}
  for step in range(total):
    grads = {k: rng.normal(size=v.shape).astype(np.float32)
             for k, v in params.items()}
    updates, state = tx.update(grads, state, jax_params)
    jax_params = optax.apply_updates(jax_params, updates)
    ref_params, ref_mus = _moco_v3_lars_step(
        ref_params, grads, ref_mus, _moco_v3_lr(base_lr, step, warmup, total),
        weight_decay=1e-2, momentum=0.9, trust_coefficient=0.001)
    for k in params:
      np.testing.assert_allclose(jax_params[k], ref_params[k], rtol=2e-5,
                                 atol=1e-6, err_msg=f'{k} at step {step}')
  # The biases and BN moved without decay or trust scaling (large steps),
  # the matrices by the trust ratio (small steps).
  assert np.abs(jax_params['bias'] - params['bias']).max() > 0.05
  assert np.abs(jax_params['w'] - params['w']).max() < 0.05


def test_optax_lars_order_differs_while_lr_changes():
  """Why cdcjax composes its own: optax.lars scales by the learning rate
  before the momentum, which differs from MoCo v3 under a schedule."""
  params = {'w': np.ones((2, 2), np.float32)}
  schedule = lambda step: 0.1 * (step + 1)
  ours = optimizers.lars(schedule, weight_decay=0.0, momentum=0.9)
  theirs = optax.lars(schedule, weight_decay=0.0, momentum=0.9)
  grads = {'w': np.full((2, 2), 0.5, np.float32)}
  s1, s2 = ours.init(params), theirs.init(params)
  for _ in range(2):
    u1, s1 = ours.update(grads, s1, params)
    u2, s2 = theirs.update(grads, s2, params)
  assert not np.allclose(u1['w'], u2['w'])
