"""The linear probe's logistic regression, fitted on the accelerator.

The objective is scikit-learn's LogisticRegression (multinomial, C = 1, the
intercept unpenalised): sum_i CE(W x_i + b, y_i) + ||W||^2 / (2 C), divided
by N for conditioning (the same minimiser), minimised full-batch with
optax's L-BFGS (zoom line search) until the gradient's norm is below `tol`
or `max_iter` iterations. The rows are sharded over the mesh's 'data' axis
(padding rows have weight 0); the parameters are replicated, so each
evaluation of the objective is one all-reduce of D x K + K values.
"""

import functools

import jax
from jax import numpy as jnp
import numpy as np
import optax

from cdcjax import kmeans as kmeans_lib


def _objective(params, x, one_hot, weights, l2):
  logits = jnp.dot(x, params['w'], precision=jax.lax.Precision.HIGHEST)
  logits = logits + params['b']
  ce = -jnp.sum(weights * jnp.sum(one_hot * jax.nn.log_softmax(logits), -1))
  total = jnp.sum(weights)
  return (ce + 0.5 * l2 * jnp.sum(params['w'] ** 2)) / total


@functools.partial(jax.jit, static_argnames=('num_classes', 'max_iter'))
def _fit(x, labels, weights, *, num_classes, l2, max_iter, tol):
  one_hot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
  params = {'w': jnp.zeros((x.shape[1], num_classes), jnp.float32),
            'b': jnp.zeros((num_classes,), jnp.float32)}
  fun = lambda p: _objective(p, x, one_hot, weights, l2)
  solver = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(fun)

  def step(carry):
    params, state = carry
    value, grad = value_and_grad(params, state=state)
    updates, state = solver.update(grad, state, params, value=value,
                                   grad=grad, value_fn=fun)
    return optax.apply_updates(params, updates), state

  def continuing(carry):
    _, state = carry
    count = optax.tree_utils.tree_get(state, 'count')
    grad = optax.tree_utils.tree_get(state, 'grad')
    norm = optax.tree_utils.tree_norm(grad)
    return (count == 0) | ((count < max_iter) & (norm >= tol))

  params, state = jax.lax.while_loop(continuing, step,
                                     (params, solver.init(params)))
  return params, optax.tree_utils.tree_get(state, 'count')


def fit_logistic_regression(x: np.ndarray, labels: np.ndarray,
                            num_classes: int, *, c: float = 1.0,
                            max_iter: int = 1000, tol: float = 1e-6,
                            mesh=None) -> tuple[dict, int]:
  """(host {'w': (D, K), 'b': (K,)}, iterations) of the multinomial logistic
  regression of labels (0 .. K-1) on the rows of x."""
  if c <= 0:
    raise ValueError(f'logistic regression needs C > 0, got {c}')
  x = np.asarray(x, np.float32)
  labels = np.asarray(labels)
  if x.ndim != 2 or labels.shape != (x.shape[0],):
    raise ValueError(f'logistic regression of {labels.shape} labels on '
                     f'{x.shape} features: needs (N,) labels and (N, D)')
  mesh = mesh or kmeans_lib.default_mesh()
  xs, weights = kmeans_lib.on_mesh(x, mesh, 'data')
  ys, _ = kmeans_lib.on_mesh(labels.astype(np.int32), mesh, 'data')
  params, count = _fit(xs, ys, weights, num_classes=num_classes, l2=1.0 / c,
                       max_iter=max_iter, tol=tol)
  return jax.tree.map(np.asarray, params), int(count)


def predict(params: dict, x: np.ndarray) -> np.ndarray:
  return np.argmax(np.asarray(x, np.float32) @ params['w'] + params['b'],
                   axis=1)
