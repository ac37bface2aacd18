"""Contrastive and clustering losses as pure functions.

All functions take *global* batches: under `jax.jit` with the batch sharded over
the `data` mesh axis, every reduction below spans all devices, so negatives and
Sinkhorn marginals are global without explicit collectives. The instance
contrasts also take the mesh (`mesh=`): they then compute each shard's rows of
the similarity matrix against the all-gathered batch (`_sharded_info_nce`).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec as P


def l2_normalize(x: jax.Array, axis: int = -1, eps: float = 1e-12) -> jax.Array:
  """x / max(||x||, eps), as torch.nn.functional.normalize.

  Computed as x * rsqrt(max(||x||^2, eps^2)), the same value: the gradient of
  ||x|| is x / ||x||, 0 / 0 where the norm is 0 or its square underflows (a
  dead cluster's probability column), and that NaN would pass through
  maximum's zero cotangent. eps^2 must be a normal number of x's dtype
  (float32/bfloat16: eps >= 1.1e-19).
  """
  squared_norm = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
  return x * jax.lax.rsqrt(jnp.maximum(squared_norm, eps * eps))


# nn.CosineSimilarity's clamp on each norm, which CC's cluster contrast uses in
# the authors' code (F.normalize's 1e-12 is the instance contrasts').
COSINE_SIMILARITY_EPS = 1e-8


def info_nce(z_a: jax.Array, z_b: jax.Array, temperature: float,
             mesh: Mesh | None = None) -> jax.Array:
  """Two-view InfoNCE (SimCLR's NT-Xent without its normalisation).

  The 2B vectors [z_a; z_b] are all anchors; the positive of row i of z_a is
  row i of z_b and vice versa; the other 2B - 2 rows are negatives. The
  similarity is the plain dot product divided by `temperature`, so callers
  decide how to normalise (CDC normalises c and s separately).

  mesh: the mesh whose axes (all of them) shard the rows of z_a and z_b. With
  more than one device, the same value is computed per shard (see
  `_sharded_info_nce`); None computes the dense 2B x 2B matrix and leaves the
  partitioning to the compiler.

  Returns the mean loss over the 2B anchors.
  """
  if mesh is not None and mesh.size > 1:
    return _sharded_info_nce(z_a, z_b, temperature, mesh)
  batch = z_a.shape[0]
  z = jnp.concatenate([z_a, z_b], axis=0).astype(jnp.float32)
  logits = (z @ z.T) / temperature
  self_mask = jnp.eye(2 * batch, dtype=bool)
  logits = jnp.where(self_mask, -jnp.inf, logits)
  positive = jnp.concatenate([jnp.arange(batch) + batch, jnp.arange(batch)])
  log_prob = jax.nn.log_softmax(logits, axis=1)
  return -jnp.mean(jnp.take_along_axis(log_prob, positive[:, None], axis=1))


def _sharded_info_nce(z_a: jax.Array, z_b: jax.Array, temperature: float,
                      mesh: Mesh) -> jax.Array:
  """info_nce with each device computing only its own anchors' rows.

  As SimCLR's TPU code: each shard's anchors (its rows of z_a and of z_b) are
  scored against the all-gathered [z_a; z_b]. The backward of the gather is a
  reduce-scatter of the keys' gradient, where the compiler's partitioning of
  the dense z z^T all-reduces the full (2B, D) gradient and permutes rows to
  build the concatenation along the sharded axis.
  """
  axes = mesh.axis_names
  batch = z_a.shape[0]
  if batch % mesh.size:
    raise ValueError(f'batch of {batch} rows does not divide over the '
                     f'{mesh.size} devices of mesh axes {axes}')

  def per_shard(za, zb):
    za, zb = za.astype(jnp.float32), zb.astype(jnp.float32)
    keys = jnp.concatenate([jax.lax.all_gather(za, axes, tiled=True),
                            jax.lax.all_gather(zb, axes, tiled=True)])
    rows = jax.lax.axis_index(axes) * za.shape[0] + jnp.arange(za.shape[0])
    columns = jnp.arange(2 * batch)

    def summed_loss(anchors, self_column, positive_column):
      logits = anchors @ keys.T / temperature
      logits = jnp.where(columns[None, :] == self_column[:, None], -jnp.inf,
                         logits)
      log_prob = jax.nn.log_softmax(logits, axis=1)
      return -jnp.sum(jnp.take_along_axis(log_prob, positive_column[:, None],
                                          axis=1))

    total = (summed_loss(za, rows, rows + batch) +
             summed_loss(zb, rows + batch, rows))
    return jax.lax.psum(total, axes) / (2 * batch)

  return jax.shard_map(per_shard, mesh=mesh, in_specs=(P(axes), P(axes)),
                       out_specs=P())(z_a, z_b)


def nt_xent(z_a: jax.Array, z_b: jax.Array, temperature: float,
            mesh: Mesh | None = None, eps: float = 1e-12) -> jax.Array:
  """SimCLR's NT-Xent: InfoNCE on L2-normalised vectors (cosine similarity);
  `eps` clamps each norm (l2_normalize), computed in float32."""
  z_a, z_b = z_a.astype(jnp.float32), z_b.astype(jnp.float32)
  return info_nce(l2_normalize(z_a, eps=eps), l2_normalize(z_b, eps=eps),
                  temperature, mesh)


def moco_v3_contrast(q_a: jax.Array, q_b: jax.Array, k_a: jax.Array,
                     k_b: jax.Array, temperature: float) -> jax.Array:
  """MoCo v3's symmetric contrast: ctr(q_a, k_b) + ctr(q_b, k_a), where
  ctr(q, k) is the cross-entropy of softmax(q_hat k_hat^T / tau) with the
  same-index key as the positive and the other keys of the (global) batch as
  negatives, times 2 tau (MoCo v3's scaling). q: online predictions; k:
  momentum keys, which receive no gradient. Vectors are L2-normalised."""
  def ctr(q, k):
    q = l2_normalize(q.astype(jnp.float32))
    k = jax.lax.stop_gradient(l2_normalize(k.astype(jnp.float32)))
    log_prob = jax.nn.log_softmax(q @ k.T / temperature, axis=1)
    return -jnp.mean(jnp.diagonal(log_prob)) * 2 * temperature
  return ctr(q_a, k_b) + ctr(q_b, k_a)


SINKHORN_ARITHMETIC = ('log', 'exp')


def swav_exp_sinkhorn(scores: jax.Array, epsilon: float = 0.05,
                      num_iters: int = 3) -> jax.Array:
  """Exact equipartition codes in SwAV's own arithmetic: Q = exp(S / eps).

  The same rounds as `sinkhorn` (balance 1), computed as SwAV's
  `distributed_sinkhorn` does, on exp(S / eps) with no shift. SwAV's scores
  are cosines (|S| <= 1, exp(20) at eps 0.05), so this is safe there; with
  unnormalised c (the CDC paper's "without norm" ablation) exp overflows to
  inf once S > 88 * eps (4.4 at eps 0.05) and the codes become NaN; sooner,
  once a whole cluster's scores sit about 83 * eps below the top ones, its
  column of Q / sum(Q) falls below float32's smallest normal, the CPU
  flushes it to 0 and 0 / 0 is NaN (|S| of about 2.2 can do it). Kept to
  reproduce that ablation; `sinkhorn` is the stable default.
  """
  scores = jax.lax.stop_gradient(scores).astype(jnp.float32)
  batch, num_clusters = scores.shape
  q = jnp.exp(scores / epsilon)
  q = q / jnp.sum(q)
  for _ in range(num_iters):
    q = q / (jnp.sum(q, axis=0, keepdims=True) * num_clusters)
    q = q / (jnp.sum(q, axis=1, keepdims=True) * batch)
  return jax.lax.stop_gradient(q * batch)


def sinkhorn(scores: jax.Array, epsilon: float = 0.05, num_iters: int = 3,
             balance: float = 1.0) -> jax.Array:
  """Equipartition soft codes from a (B, K) score matrix, as SwAV computes them.

  Solves max_Q Tr(Q^T S) + eps H(Q) over the transport polytope whose rows
  (samples) sum to 1/B and columns (clusters) to 1/K, by `num_iters` rounds of
  Sinkhorn-Knopp, and returns Q scaled so each sample's code sums to 1.
  The same updates as SwAV's, carried out on log Q = log u_i + S_ij / eps +
  log v_j in float32 under stop-gradient: exp(S / eps) itself would underflow
  whole clusters to zero (and give NaN) once the score range exceeds about
  87 * eps.

  `balance` < 1 relaxes the cluster marginal (unbalanced entropic OT with a
  KL penalty rho on the column sums, balance = rho / (rho + eps); Chizat et
  al., 2018): the cluster scaling becomes v = (1/K / (K^T u)) ** balance,
  K = exp(S / eps), so clusters may keep unequal sizes, as classes of
  imbalanced data (USPS) do.
  1 is the paper's exact equipartition; 0 leaves only the sample constraint,
  i.e. softmax(S / eps).
  """
  scores = jax.lax.stop_gradient(scores).astype(jnp.float32)
  batch, num_clusters = scores.shape
  log_q = scores / epsilon  # (B, K) = log of u_i exp(S_ij / eps) v_j.
  log_q = log_q - jax.nn.logsumexp(log_q)
  log_v = jnp.zeros((num_clusters,), jnp.float32)

  def one_round(carry, _):
    log_q, log_v = carry
    # Each cluster gets mass 1/K (relaxed by `balance`), then each sample 1/B.
    # Updating log Q in place, not u and v, keeps float32 precise when the
    # scores are large.
    kernel_column_mass = jax.nn.logsumexp(log_q, axis=0) - log_v
    new_log_v = balance * (-jnp.log(num_clusters) - kernel_column_mass)
    log_q = log_q + (new_log_v - log_v)[None, :]
    log_q = log_q - jax.nn.logsumexp(log_q, axis=1, keepdims=True)
    log_q = log_q - jnp.log(batch)
    return (log_q, new_log_v), None

  (log_q, _), _ = jax.lax.scan(one_round, (log_q, log_v), None,
                               length=num_iters)
  return jax.lax.stop_gradient(jnp.exp(log_q + jnp.log(batch)))


class CDCLoss(NamedTuple):
  total: jax.Array
  infonce: jax.Array
  equipartition: jax.Array


def cdc_loss(c_a: jax.Array, s_a: jax.Array, c_b: jax.Array, s_b: jax.Array, *,
             temperature: float, cluster_temperature: float,
             equipartition_weight: float = 1.0,
             sinkhorn_epsilon: float = 0.05, sinkhorn_iters: int = 3,
             sinkhorn_target: str = 'swapped', normalize_c: bool = True,
             sinkhorn_balance: float = 1.0,
             sinkhorn_arithmetic: str = 'log',
             use_infonce: bool = True,
             use_equipartition: bool = True,
             renormalize_concat: bool = False,
             predictions=None, momentum_keys=None,
             mesh: Mesh | None = None) -> CDCLoss:
  """The CDC objective L = L_InfoNCE + lambda * L_eq for two views a and b.

  Args:
    c_a, c_b: (B, K) categorical logits of the two views.
    s_a, s_b: (B, D) instance factors of the two views.
    temperature: tau of the InfoNCE term on z = [c_hat; s_hat].
    cluster_temperature: tau_c, p = softmax(c_hat / tau_c).
    equipartition_weight: lambda.
    sinkhorn_epsilon, sinkhorn_iters: entropic regularisation and rounds.
    sinkhorn_target: 'same' (codes of view a supervise p of view a) or
      'swapped' (codes of view a supervise p of view b, as SwAV).
    sinkhorn_balance: 1 is the paper's exact equipartition; < 1 lets the
      targets' cluster sizes follow the data (see `sinkhorn`).
    sinkhorn_arithmetic: 'log' (`sinkhorn`, stable for any scores) or 'exp'
      (`swav_exp_sinkhorn`, SwAV's exp(S / eps); overflows to NaN on large
      unnormalised c; balance must be 1).
    normalize_c: L2-normalise c (the paper's choice; False is the "without
      norm" ablation, which diverges).
    use_infonce, use_equipartition: ablation switches.
    renormalize_concat: L2-normalise z = [c_hat; s_hat] again before the
      InfoNCE, as the Lightly library's NTXentLoss (which the paper's code is
      based on) does to whatever it is given: |z| = sqrt(2), so this is the
      InfoNCE at temperature 2 tau. In-batch contrast only.
    predictions, momentum_keys: with loss.contrast='moco_v3', the pairs
      (p_a, p_b) of predictor outputs and (z_a, z_b) = [c; s] of the momentum
      heads; the contrast term is then moco_v3_contrast on them instead of
      the in-batch InfoNCE over the 2B views.
    mesh: the mesh sharding the batch, for the in-batch InfoNCE (info_nce).
  """
  if sinkhorn_target not in ('same', 'swapped'):
    raise ValueError(
        f"sinkhorn_target={sinkhorn_target!r}; allowed: 'same', 'swapped'")
  if sinkhorn_arithmetic not in SINKHORN_ARITHMETIC:
    raise ValueError(f'sinkhorn_arithmetic={sinkhorn_arithmetic!r}; allowed: '
                     f'{SINKHORN_ARITHMETIC}')
  if renormalize_concat and predictions is not None:
    raise ValueError('renormalize_concat applies to the in-batch InfoNCE; '
                     "not with loss.contrast='moco_v3'")
  if sinkhorn_arithmetic == 'exp' and sinkhorn_balance != 1.0:
    raise ValueError(f'sinkhorn_balance={sinkhorn_balance} with '
                     "sinkhorn_arithmetic='exp'; SwAV's form has exact "
                     "equipartition only (balance 1); use 'log'")
  c_a, c_b, s_a, s_b = (x.astype(jnp.float32) for x in (c_a, c_b, s_a, s_b))
  if normalize_c:
    c_a, c_b = l2_normalize(c_a), l2_normalize(c_b)
  s_a, s_b = l2_normalize(s_a), l2_normalize(s_b)

  zero = jnp.zeros((), jnp.float32)
  infonce = zero
  if use_infonce and predictions is not None:
    keys = []
    for c, s in momentum_keys:  # Normalised as the online c_hat and s_hat.
      c = c.astype(jnp.float32)
      c = l2_normalize(c) if normalize_c else c
      keys.append(jnp.concatenate([c, l2_normalize(s.astype(jnp.float32))],
                                  axis=1))
    infonce = moco_v3_contrast(*predictions, *keys, temperature)
  elif use_infonce:
    z_a = jnp.concatenate([c_a, s_a], axis=1)
    z_b = jnp.concatenate([c_b, s_b], axis=1)
    if renormalize_concat:
      z_a, z_b = l2_normalize(z_a), l2_normalize(z_b)
    infonce = info_nce(z_a, z_b, temperature, mesh)

  equipartition = zero
  if use_equipartition:
    if sinkhorn_arithmetic == 'exp':
      codes = lambda c: swav_exp_sinkhorn(c, sinkhorn_epsilon, sinkhorn_iters)
    else:
      codes = lambda c: sinkhorn(c, sinkhorn_epsilon, sinkhorn_iters,
                                 sinkhorn_balance)
    q_a, q_b = codes(c_a), codes(c_b)
    if sinkhorn_target == 'swapped':
      q_a, q_b = q_b, q_a
    log_p_a = jax.nn.log_softmax(c_a / cluster_temperature, axis=1)
    log_p_b = jax.nn.log_softmax(c_b / cluster_temperature, axis=1)
    equipartition = -0.5 * (jnp.mean(jnp.sum(q_a * log_p_a, axis=1)) +
                            jnp.mean(jnp.sum(q_b * log_p_b, axis=1)))

  total = infonce + equipartition_weight * equipartition
  return CDCLoss(total=total, infonce=infonce, equipartition=equipartition)


def _x_log_x(x: jax.Array) -> jax.Array:
  """x log x with its limit 0 at x = 0, and a zero (not NaN) gradient there."""
  positive = x > 0
  return jnp.where(positive, x * jnp.log(jnp.where(positive, x, 1.0)), 0.0)


def _binary_entropy(p: jax.Array) -> jax.Array:
  """H(p) in nats: exactly 0 at p = 0 and 1, with a finite gradient there.

  Not -p log(p + eps) - (1 - p) log(1 - p + eps): XLA regroups 1 - p + eps
  as (1 + eps) - p, 1 + eps rounds to 1 in float32, and a sigmoid that
  rounds to exactly 1.0 (from a logit of about 16.7) gives 0 * log 0 = NaN
  under jit. Here 1 - p carries no constant to fold, and 0 log 0 is 0.
  """
  return -(_x_log_x(p) + _x_log_x(1.0 - p))


class CCLoss(NamedTuple):
  total: jax.Array
  instance: jax.Array
  cluster: jax.Array
  entropy: jax.Array  # Sum over both views of log K - H(cluster marginal).


def cc_loss(z_a: jax.Array, z_b: jax.Array, y_a: jax.Array, y_b: jax.Array, *,
            instance_temperature: float = 0.5,
            cluster_temperature: float = 1.0,
            entropy_weight: float = 1.0,
            mesh: Mesh | None = None) -> CCLoss:
  """Contrastive Clustering (Li et al., 2021), as the authors' code computes it.

  Args:
    z_a, z_b: (B, D) instance-head outputs; NT-Xent on their normalisation.
    y_a, y_b: (B, K) cluster probabilities (softmax outputs). Their 2K columns
      are contrasted with cosine similarity / cluster_temperature (positive:
      the same column in the other view), and per view log K - H(mean_i y_i)
      is added, which pushes the cluster marginal towards uniform. Each
      column's norm is clamped at 1e-8 as the authors' nn.CosineSimilarity
      does (a dead cluster's column has norm ~0; the clamp is what their
      numbers were trained with), and an empty cluster's 0 log 0 is 0.
    mesh: the mesh sharding the batch, for the instance contrast (info_nce);
      the cluster contrast's rows are the K clusters, not sharded.
  """
  instance = nt_xent(z_a, z_b, instance_temperature, mesh)
  cluster = nt_xent(y_a.T, y_b.T, cluster_temperature,
                    eps=COSINE_SIMILARITY_EPS)

  def marginal_gap(y):
    marginal = jnp.sum(y, axis=0)
    marginal = marginal / jnp.sum(marginal)
    return jnp.log(y.shape[1]) + jnp.sum(_x_log_x(marginal))

  entropy = marginal_gap(y_a) + marginal_gap(y_b)
  total = instance + cluster + entropy_weight * entropy
  return CCLoss(total=total, instance=instance, cluster=cluster,
                entropy=entropy)


class CDLoss(NamedTuple):
  total: jax.Array
  instance: jax.Array
  feature: jax.Array
  entropy: jax.Array  # Mean normalised binary entropy of the predictions.


def cd_loss(z_a: jax.Array, z_b: jax.Array, f_a: jax.Array, f_b: jax.Array, *,
            instance_temperature: float = 0.5,
            feature_temperature: float = 1.0,
            entropy_weight: float = 1.0,
            mesh: Mesh | None = None) -> CDLoss:
  """Contrastive Disentangling (Jiang et al., 2024), as the authors' code.

  Args:
    z_a, z_b: (B, D) instance-projector outputs; NT-Xent on their
      normalisation.
    f_a, f_b: (B, F) sigmoid feature predictions. The 2F columns are contrasted
      with cosine similarity / feature_temperature (positive: the same head in
      the other view); the mean normalised binary entropy of all predictions
      (entropy / log 2, averaged over the views) is subtracted.
    mesh: the mesh sharding the batch, for the instance contrast (info_nce).
  """
  instance = nt_xent(z_a, z_b, instance_temperature, mesh)
  feature = nt_xent(f_a.T, f_b.T, feature_temperature)
  entropy = 0.5 * (jnp.mean(_binary_entropy(f_a)) +
                   jnp.mean(_binary_entropy(f_b))) / jnp.log(2.0)
  total = instance + feature - entropy_weight * entropy
  return CDLoss(total=total, instance=instance, feature=feature,
                entropy=entropy)


class SelfLabelLoss(NamedTuple):
  total: jax.Array
  confident_fraction: jax.Array


def self_label_loss(weak_logits: jax.Array, strong_logits: jax.Array, *,
                    threshold: float = 0.99,
                    class_balance: bool = True) -> SelfLabelLoss:
  """SCAN's self-labeling loss.

  Samples whose weak-view softmax confidence exceeds `threshold` get their
  argmax as pseudo-label (under stop-gradient); the strong view's logits are
  trained with cross-entropy on them. With class_balance, the loss is the
  weighted mean with weight n / count_c for pseudo-class c (n = number of
  confident samples in the global batch), as torch's weighted cross-entropy.
  With no confident sample the loss and its gradient are zero.
  """
  weak = jax.nn.softmax(jax.lax.stop_gradient(weak_logits).astype(jnp.float32))
  confidence, target = jnp.max(weak, axis=1), jnp.argmax(weak, axis=1)
  mask = (confidence > threshold).astype(jnp.float32)
  log_p = jax.nn.log_softmax(strong_logits.astype(jnp.float32), axis=1)
  nll = -jnp.take_along_axis(log_p, target[:, None], axis=1)[:, 0]
  if class_balance:
    num_classes = weak_logits.shape[1]
    counts = jnp.zeros(num_classes).at[target].add(mask)
    class_weight = jnp.where(counts > 0,
                             jnp.sum(mask) / jnp.maximum(counts, 1.0), 0.0)
    weight = mask * class_weight[target]
  else:
    weight = mask
  total = jnp.sum(weight * nll) / jnp.maximum(jnp.sum(weight), 1e-12)
  return SelfLabelLoss(total=total, confident_fraction=jnp.mean(mask))
