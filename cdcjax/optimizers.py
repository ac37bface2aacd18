"""Optimisers and learning-rate schedules from the config.

All follow PyTorch's conventions where the papers used PyTorch: weight decay
is added to the gradient (SGD, Adam), momentum accumulates the gradient before
the learning rate scales it, and the schedule is a linear warm-up followed by
a cosine decay to 0, stepped every iteration.
"""

import jax
import optax

from cdcjax import models


def _is_matrix(params):
  """True for conv and linear weights; False for biases and BatchNorm."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def lars(learning_rate, *, weight_decay: float, momentum: float = 0.9,
         trust_coefficient: float = 0.001) -> optax.GradientTransformation:
  """LARS as MoCo v3's optimizer.py: for weights with ndim > 1, add weight
  decay, then scale by trust_coefficient * |w| / |update| (1 when either norm
  is 0); biases and BatchNorm get neither. Then momentum mu = m * mu + update,
  and w -= lr * mu (the learning rate applies after the momentum, unlike
  optax.lars, which matters while the learning rate changes)."""
  return optax.chain(
      optax.add_decayed_weights(weight_decay, mask=_is_matrix),
      optax.masked(optax.scale_by_trust_ratio(
          trust_coefficient=trust_coefficient, eps=0.0),
                   _is_matrix),
      optax.trace(decay=momentum, nesterov=False),
      optax.scale_by_learning_rate(learning_rate))


def frozen_modules(config) -> tuple[str, ...]:
  """Top-level modules the optimiser leaves alone."""
  model = config.get('model')
  if not model:
    return ()
  frozen = ('backbone',) if model.get('freeze_backbone') else ()
  if model.get('cluster_head_input', 'features') == 'cd_predictions':
    frozen += models.CD_PREDICTION_MODULES
  return frozen


def make_optimizer(config, total_steps: int) -> optax.GradientTransformation:
  tx = _base_optimizer(config, total_steps)
  frozen = frozen_modules(config)
  if frozen:
    # No update at all (not even weight decay) for the frozen modules.
    labels = lambda params: {k: 'frozen' if k in frozen else 'train'
                             for k in params}
    return optax.multi_transform({'train': tx, 'frozen': optax.set_to_zero()},
                                 labels)
  return tx


def _base_optimizer(config, total_steps: int) -> optax.GradientTransformation:
  oc = config.optimizer
  warmup = int(oc.warmup_fraction * total_steps)
  if warmup > 0:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, oc.learning_rate, warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1), end_value=0.0)
  else:
    schedule = optax.cosine_decay_schedule(oc.learning_rate, total_steps)
  if oc.name == 'sgd':  # PyTorch SGD: decay added to the gradient.
    return optax.chain(
        optax.add_decayed_weights(oc.weight_decay),
        optax.sgd(schedule, momentum=oc.momentum, nesterov=oc.nesterov))
  if oc.name == 'adam':  # PyTorch Adam: L2 added to the gradient.
    return optax.chain(optax.add_decayed_weights(oc.weight_decay),
                       optax.adam(schedule))
  if oc.name == 'lars':
    return lars(schedule, weight_decay=oc.weight_decay, momentum=oc.momentum,
                trust_coefficient=oc.trust_coefficient)
  return optax.adamw(schedule, weight_decay=oc.weight_decay)
