"""k-means on the accelerator: jitted, with the points' axis sharded over a
mesh, so evaluation at ImageNet size (50,000 x 2,048 into 1,000 clusters)
does not wait on the host.

The algorithm is scikit-learn's KMeans (Lloyd) with its defaults:
  - greedy k-means++ initialisation (2 + floor(ln K) candidates a step, the
    one that lowers the potential most kept);
  - Lloyd iterations until no assignment changes, or the centres move less
    than tol x the data's mean per-dimension variance (squared Frobenius
    shift), or max_iter;
  - an empty cluster takes the point farthest from its centre;
  - n_init initialisations, the lowest inertia kept.
Padding points (to split N evenly over the devices) have weight 0: they are
never picked as centres and do not count in the means or the inertia. The
points' axis is sharded; centres and per-cluster sums are replicated, so each
iteration's reductions are one all-reduce of K x (d + 1) values.
"""

import functools
import math

import jax
from jax import numpy as jnp
from jax.experimental import multihost_utils
from jax.sharding import AxisType
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np


def _squared_distances(x, x_sq, centres):
  """(N, K) squared Euclidean distances, clipped at 0 (cancellation)."""
  c_sq = jnp.sum(centres * centres, axis=1)
  cross = jnp.dot(x, centres.T, precision=jax.lax.Precision.HIGHEST)
  return jnp.maximum(x_sq[:, None] - 2.0 * cross + c_sq[None, :], 0.0)


def _sample(key, weights, count):
  """`count` indices drawn with probability proportional to `weights` (by
  inverting the cumulative sum: one uniform each, where a categorical
  would draw a Gumbel per point; weight 0 is never drawn)."""
  cumulative = jnp.cumsum(weights)
  u = jax.random.uniform(key, (count,)) * cumulative[-1]
  index = jnp.searchsorted(cumulative, u, side='right')
  return jnp.minimum(index, weights.shape[0] - 1)


def plus_plus_step(key, x, x_sq, weights, closest, num_trials: int):
  """One greedy k-means++ step: of `num_trials` points drawn by D^2, the one
  that lowers the potential most. (its index, the new squared distances to
  the nearest centre)."""
  candidates = _sample(key, closest, num_trials)
  to_candidates = _squared_distances(x, x_sq, x[candidates]) * weights[:, None]
  potentials = jnp.minimum(closest[:, None], to_candidates)
  best = jnp.argmin(jnp.sum(potentials, axis=0))
  return candidates[best], potentials[:, best]


def _kmeans_plus_plus(key, x, x_sq, weights, num_clusters):
  """Greedy k-means++ (scikit-learn's `_kmeans_plusplus`): centres (K, d)."""
  num_trials = 2 + int(math.log(num_clusters))
  first_key, key = jax.random.split(key)
  first = _sample(first_key, weights, 1)[0]
  centres = jnp.zeros((num_clusters, x.shape[1]), x.dtype).at[0].set(x[first])
  closest = _squared_distances(x, x_sq, x[first][None])[:, 0] * weights

  def step(k, carry):
    centres, closest, key = carry
    key, trial_key = jax.random.split(key)
    index, closest = plus_plus_step(trial_key, x, x_sq, weights, closest,
                                    num_trials)
    return centres.at[k].set(x[index]), closest, key

  centres, _, _ = jax.lax.fori_loop(1, num_clusters, step,
                                    (centres, closest, key))
  return centres


def _assign(x, x_sq, centres):
  distances = _squared_distances(x, x_sq, centres)
  labels = jnp.argmin(distances, axis=1)
  return labels, jnp.take_along_axis(distances, labels[:, None], axis=1)[:, 0]


def _update(x, weights, labels, closest, centres):
  """New centres: the weighted mean of each cluster; an empty cluster takes
  the point farthest from its centre (distinct points for several)."""
  num_clusters = centres.shape[0]
  if jax.default_backend() == 'tpu':  # A matmul suits the MXU; scatter does not.
    one_hot = jax.nn.one_hot(labels, num_clusters, dtype=x.dtype)
    one_hot = one_hot * weights[:, None]
    counts = jnp.sum(one_hot, axis=0)
    sums = jnp.dot(one_hot.T, x, precision=jax.lax.Precision.HIGHEST)
  else:  # N x d additions instead of an N x K x d matmul.
    counts = jax.ops.segment_sum(weights, labels, num_clusters)
    sums = jax.ops.segment_sum(x * weights[:, None], labels, num_clusters)
  means = sums / jnp.maximum(counts, 1.0)[:, None]
  empty = counts == 0

  def relocate(means):  # The i-th empty cluster takes the i-th farthest point.
    _, farthest = jax.lax.top_k(closest * weights, num_clusters)
    rank = jnp.clip(jnp.cumsum(empty) - 1, 0, num_clusters - 1)
    return jnp.where(empty[:, None], jnp.take(x, farthest[rank], axis=0),
                     means)

  return jax.lax.cond(jnp.any(empty), relocate, lambda m: m, means)


def lloyd_iteration(x, weights, centres):
  """One Lloyd iteration from `centres`: (new centres, labels)."""
  x_sq = jnp.sum(x * x, axis=1)
  labels, closest = _assign(x, x_sq, centres)
  return _update(x, weights, labels, closest, centres), labels


def _lloyd(centres, x, x_sq, weights, max_iter, tolerance):
  """(inertia, labels, iterations) of Lloyd's iterations from `centres`
  to convergence."""
  labels, closest = _assign(x, x_sq, centres)

  def not_done(state):
    iteration, _, _, _, converged = state
    return jnp.logical_and(iteration < max_iter, jnp.logical_not(converged))

  def body(state):
    iteration, centres, labels, closest, _ = state
    new_centres = _update(x, weights, labels, closest, centres)
    new_labels, new_closest = _assign(x, x_sq, new_centres)
    shift = jnp.sum((new_centres - centres) ** 2)
    converged = jnp.logical_or(jnp.all(new_labels == labels),
                               shift <= tolerance)
    return iteration + 1, new_centres, new_labels, new_closest, converged

  state = (0, centres, labels, closest, False)
  iterations, centres, labels, closest, _ = jax.lax.while_loop(
      not_done, body, state)
  return jnp.sum(closest * weights), labels, iterations


@functools.partial(jax.jit, static_argnames=('num_clusters', 'n_init',
                                             'max_iter', 'tol'))
def _kmeans(key, x, weights, *, num_clusters, n_init, max_iter, tol):
  x = x.astype(jnp.float32)
  x_sq = jnp.sum(x * x, axis=1)
  total = jnp.sum(weights)
  mean = jnp.sum(x * weights[:, None], axis=0) / total
  variance = jnp.sum(((x - mean) ** 2) * weights[:, None], axis=0) / total
  tolerance = tol * jnp.mean(variance)
  best = (jnp.inf, jnp.zeros(x.shape[0], jnp.int32), 0)
  # All initialisations at once: each k-means++ step reads x once for the
  # candidates of every start (memory-bound otherwise).
  starts = jax.vmap(lambda k: _kmeans_plus_plus(
      k, x, x_sq, weights, num_clusters))(jax.random.split(key, n_init))

  def run(i, best):
    inertia, labels, iterations = _lloyd(starts[i], x, x_sq, weights,
                                         max_iter, tolerance)
    better = inertia < best[0]
    return jax.tree.map(lambda new, old: jnp.where(better, new, old),
                        (inertia, labels.astype(jnp.int32), iterations), best)

  return jax.lax.fori_loop(0, n_init, run, best)


def default_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), ('data',),
              axis_types=(AxisType.Auto,))


def on_mesh(x: np.ndarray, mesh: Mesh, axis):
  """x (host, N x ...) padded with zeros to a multiple of the mesh's size on
  `axis`, as a global array sharded over it on its first dimension, and the
  rows' weights (0 for padding)."""
  n = x.shape[0]
  shards = mesh.shape[axis] if isinstance(axis, str) else math.prod(
      mesh.shape[a] for a in axis)
  padded = -(-n // shards) * shards
  x = np.concatenate([x, np.zeros((padded - n, *x.shape[1:]), x.dtype)])
  weights = (np.arange(padded) < n).astype(np.float32)
  put = lambda a: jax.make_array_from_callback(
      a.shape, NamedSharding(mesh, P(axis, *[None] * (a.ndim - 1))),
      lambda index: a[index])
  return put(x), put(weights)


def kmeans(x, num_clusters: int, seed: int, *, n_init: int = 10,
           max_iter: int = 300, tol: float = 1e-4, mesh: Mesh | None = None,
           return_info: bool = False):
  """Cluster assignments (host int64, N) of the rows of x.

  x: a host array (every process holds all rows) or a jax.Array sharded on
  its first axis over a mesh (its mesh is used). Otherwise `mesh` (default:
  all devices on one 'data' axis) shards the rows.
  """
  if num_clusters < 1:
    raise ValueError(f'k-means needs num_clusters >= 1, got {num_clusters}')
  if n_init < 1 or max_iter < 1:
    raise ValueError(f'k-means needs n_init >= 1 and max_iter >= 1, got '
                     f'{n_init} and {max_iter}')
  axis = 'data'
  if isinstance(x, jax.Array) and isinstance(x.sharding, NamedSharding):
    spec = x.sharding.spec
    mesh, axis = x.sharding.mesh, spec[0] if len(spec) else None
    x = multihost_utils.process_allgather(x, tiled=True)
  x = np.asarray(x, np.float32)
  if x.ndim != 2 or x.shape[0] < num_clusters:
    raise ValueError(f'k-means of {x.shape} points into {num_clusters} '
                     'clusters: needs (N, d) with N >= num_clusters')
  mesh = mesh or default_mesh()
  if axis is None:  # Replicated: shard over the whole mesh.
    axis = mesh.axis_names
  n = x.shape[0]
  xs, weights = on_mesh(x, mesh, axis)
  inertia, labels, iterations = _kmeans(
      jax.random.PRNGKey(seed), xs, weights, num_clusters=num_clusters,
      n_init=n_init, max_iter=max_iter, tol=tol)
  labels = np.asarray(multihost_utils.process_allgather(labels, tiled=True)
                      )[:n].astype(np.int64)
  if return_info:
    return labels, {'inertia': float(inertia),
                    'iterations_of_best': int(iterations)}
  return labels
