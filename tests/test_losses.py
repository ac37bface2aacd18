"""Losses and Sinkhorn against NumPy references written from the definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cdcjax import recipes
from cdcjax import losses
from cdcjax import methods


def _normalize(x):
  return x / np.linalg.norm(x, axis=1, keepdims=True)


def np_info_nce(z_a, z_b, tau):
  """-1/2B sum_i log(exp(z_i.z_i+/tau) / sum_{j != i} exp(z_i.z_j/tau))."""
  z = np.concatenate([z_a, z_b]).astype(np.float64)
  n = len(z)
  b = n // 2
  total = 0.0
  for i in range(n):
    pos = (i + b) % n
    denom = sum(np.exp(z[i] @ z[j] / tau) for j in range(n) if j != i)
    total += -np.log(np.exp(z[i] @ z[pos] / tau) / denom)
  return total / n


def np_weighted_info_nce_on_s(c_a, s_a, c_b, s_b, tau):
  """CDC's re-written loss: InfoNCE on s_hat with negative weights
  w_ij = exp((c_i.c_j - c_i.c_i+) / tau)."""
  c = np.concatenate([c_a, c_b]).astype(np.float64)
  s = np.concatenate([s_a, s_b]).astype(np.float64)
  n = len(c)
  b = n // 2
  total = 0.0
  for i in range(n):
    pos = (i + b) % n
    pos_term = np.exp(s[i] @ s[pos] / tau)
    neg = sum(np.exp((c[i] @ c[j] - c[i] @ c[pos]) / tau) *
              np.exp(s[i] @ s[j] / tau)
              for j in range(n) if j not in (i, pos))
    total += -np.log(pos_term / (pos_term + neg))
  return total / n


def np_sinkhorn(scores, eps, iters):
  """Sinkhorn-Knopp on the kernel exp(S/eps): alternately make every cluster
  hold mass 1/K and every sample mass 1/B; return B * Q (rows sum to 1)."""
  scores = scores.astype(np.float64)
  b, k = scores.shape
  q = np.exp(scores / eps)
  q /= q.sum()
  for _ in range(iters):
    for cluster in range(k):
      q[:, cluster] *= (1.0 / k) / q[:, cluster].sum()
    for sample in range(b):
      q[sample, :] *= (1.0 / b) / q[sample, :].sum()
  return q * b


def np_log_softmax(x):
  x = x - x.max(axis=1, keepdims=True)
  return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def np_cdc(c_a, s_a, c_b, s_b, tau, tau_c, lam, eps, iters, target):
  c_a, c_b, s_a, s_b = map(_normalize, (c_a, c_b, s_a, s_b))
  infonce = np_info_nce(np.concatenate([c_a, s_a], 1),
                        np.concatenate([c_b, s_b], 1), tau)
  q_a, q_b = np_sinkhorn(c_a, eps, iters), np_sinkhorn(c_b, eps, iters)
  if target == 'swapped':
    q_a, q_b = q_b, q_a
  eq = -0.5 * ((q_a * np_log_softmax(c_a / tau_c)).sum(1).mean() +
               (q_b * np_log_softmax(c_b / tau_c)).sum(1).mean())
  return infonce + lam * eq, infonce, eq


@pytest.fixture
def views():
  rng = np.random.default_rng(0)
  b, k, d = 12, 5, 7
  c_a = rng.normal(size=(b, k)).astype(np.float32)
  c_b = (c_a + 0.3 * rng.normal(size=(b, k))).astype(np.float32)
  s_a = rng.normal(size=(b, d)).astype(np.float32)
  s_b = (s_a + 0.3 * rng.normal(size=(b, d))).astype(np.float32)
  return c_a, s_a, c_b, s_b


@pytest.mark.parametrize('tau', [0.1, 0.5, 1.0])
def test_info_nce_matches_numpy(views, tau):
  c_a, s_a, c_b, s_b = views
  got = losses.info_nce(jnp.asarray(s_a), jnp.asarray(s_b), tau)
  np.testing.assert_allclose(got, np_info_nce(s_a, s_b, tau), rtol=1e-5)


def test_nt_xent_is_scale_invariant_and_matches_numpy(views):
  _, s_a, _, s_b = views
  expected = np_info_nce(_normalize(s_a), _normalize(s_b), 0.5)
  np.testing.assert_allclose(losses.nt_xent(s_a, s_b, 0.5), expected, rtol=1e-5)
  np.testing.assert_allclose(losses.nt_xent(3 * s_a, 0.1 * s_b, 0.5), expected,
                             rtol=1e-5)


def test_info_nce_known_limits():
  b = 4
  same = np.ones((b, 3), np.float32) / np.sqrt(3)
  # Every pair equally similar: uniform over 2B - 1 candidates.
  np.testing.assert_allclose(losses.info_nce(same, same, 0.5),
                             np.log(2 * b - 1), rtol=1e-6)
  # Orthogonal instances, identical views, cold temperature: loss -> 0.
  eye = np.eye(b, dtype=np.float32)
  assert float(losses.info_nce(eye, eye, 0.01)) < 1e-6


@pytest.mark.parametrize('target', ['same', 'swapped'])
@pytest.mark.parametrize('tau,tau_c,lam', [(0.2, 0.1, 1.0), (0.5, 0.2, 0.5)])
def test_cdc_loss_matches_numpy(views, target, tau, tau_c, lam):
  got = losses.cdc_loss(*map(jnp.asarray, views), temperature=tau,
                        cluster_temperature=tau_c, equipartition_weight=lam,
                        sinkhorn_epsilon=0.05, sinkhorn_iters=3,
                        sinkhorn_target=target)
  total, infonce, eq = np_cdc(*views, tau, tau_c, lam, 0.05, 3, target)
  np.testing.assert_allclose(got.infonce, infonce, rtol=1e-5)
  np.testing.assert_allclose(got.equipartition, eq, rtol=1e-5)
  np.testing.assert_allclose(got.total, total, rtol=1e-5)


def test_same_and_swapped_targets_differ(views):
  kwargs = dict(temperature=0.2, cluster_temperature=0.1)
  same = losses.cdc_loss(*views, sinkhorn_target='same', **kwargs)
  swapped = losses.cdc_loss(*views, sinkhorn_target='swapped', **kwargs)
  assert abs(float(same.equipartition - swapped.equipartition)) > 1e-4
  np.testing.assert_allclose(same.infonce, swapped.infonce)


@pytest.mark.parametrize('tau', [0.2, 0.5])
def test_weighted_negatives_identity(views, tau):
  """InfoNCE on [c_hat; s_hat] equals InfoNCE on s_hat with each negative
  weighted by w_ij = exp((c_i.c_j - c_i.c_i+)/tau) (the paper's eq. 3)."""
  c_a, s_a, c_b, s_b = map(_normalize, views)
  got = losses.cdc_loss(*views, temperature=tau, cluster_temperature=0.1,
                        use_equipartition=False)
  expected = np_weighted_info_nce_on_s(c_a, s_a, c_b, s_b, tau)
  np.testing.assert_allclose(got.infonce, expected, rtol=1e-5)
  np.testing.assert_allclose(got.total, expected, rtol=1e-5)


def test_cdc_ablation_switches(views):
  kwargs = dict(temperature=0.2, cluster_temperature=0.1)
  no_eq = losses.cdc_loss(*views, use_equipartition=False, **kwargs)
  assert float(no_eq.equipartition) == 0.0
  no_nce = losses.cdc_loss(*views, use_infonce=False, **kwargs)
  assert float(no_nce.infonce) == 0.0
  np.testing.assert_allclose(no_nce.total, no_nce.equipartition)
  # Without normalisation of c, c enters the dot products unscaled.
  c_a, s_a, c_b, s_b = views
  raw = losses.cdc_loss(*views, normalize_c=False, use_equipartition=False,
                        **kwargs)
  expected = np_info_nce(np.concatenate([c_a, _normalize(s_a)], 1),
                         np.concatenate([c_b, _normalize(s_b)], 1), 0.2)
  np.testing.assert_allclose(raw.infonce, expected, rtol=1e-5)


def test_equipartition_gradient_does_not_flow_through_codes(views):
  c_a, s_a, c_b, s_b = map(jnp.asarray, views)

  def eq_loss(c_a):
    return losses.cdc_loss(c_a, s_a, c_b, s_b, temperature=0.2,
                           cluster_temperature=0.1, use_infonce=False,
                           sinkhorn_target='same').total

  def reference(c_a):  # codes computed outside, as constants.
    q = losses.sinkhorn(losses.l2_normalize(c_a))
    log_p = jax.nn.log_softmax(losses.l2_normalize(c_a) / 0.1)
    q_b = losses.sinkhorn(losses.l2_normalize(c_b))
    log_p_b = jax.nn.log_softmax(losses.l2_normalize(c_b) / 0.1)
    return -0.5 * (jnp.mean(jnp.sum(jax.lax.stop_gradient(q) * log_p, 1)) +
                   jnp.mean(jnp.sum(q_b * log_p_b, 1)))

  np.testing.assert_allclose(jax.grad(eq_loss)(c_a), jax.grad(reference)(c_a),
                             rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('eps,iters', [(0.05, 3), (0.5, 1), (0.1, 10)])
def test_sinkhorn_matches_numpy(eps, iters):
  scores = _normalize(np.random.default_rng(1).normal(size=(16, 6)))
  np.testing.assert_allclose(losses.sinkhorn(scores.astype(np.float32), eps,
                                             iters),
                             np_sinkhorn(scores, eps, iters), rtol=2e-4,
                             atol=1e-6)


def test_sinkhorn_marginals():
  rng = np.random.default_rng(2)
  b, k = 64, 8
  scores = _normalize(rng.normal(size=(b, k))).astype(np.float32)
  q = np.asarray(losses.sinkhorn(scores, 0.05, 3))
  # The last step normalises samples: each code sums to 1 exactly.
  np.testing.assert_allclose(q.sum(1), np.ones(b), rtol=1e-5)
  # With enough rounds the clusters are equally filled: B / K each.
  q = np.asarray(losses.sinkhorn(scores, 0.05, 200))
  np.testing.assert_allclose(q.sum(0), np.full(k, b / k), rtol=1e-3)
  np.testing.assert_allclose(q.sum(1), np.ones(b), rtol=1e-5)
  assert (q >= 0).all()


def test_sinkhorn_is_stable_and_shift_invariant():
  rng = np.random.default_rng(3)
  # Score range >> 87 * eps: exp(S / eps) would underflow whole clusters.
  scores = rng.normal(size=(32, 10)).astype(np.float32) * 50
  q = np.asarray(losses.sinkhorn(scores, 0.05, 3))
  assert np.isfinite(q).all()
  np.testing.assert_allclose(q.sum(1), np.ones(32), rtol=1e-5)
  # Scores up to 1e3 / eps: float32 keeps ~1e-4 relative precision here.
  np.testing.assert_allclose(losses.sinkhorn(scores + 7.0, 0.05, 3), q,
                             rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize('eps,iters', [(0.05, 3), (0.1, 10)])
def test_swav_exp_sinkhorn_matches_numpy_and_the_log_form(eps, iters):
  scores = _normalize(np.random.default_rng(1).normal(size=(16, 6)))
  exp_form = losses.swav_exp_sinkhorn(scores.astype(np.float32), eps, iters)
  np.testing.assert_allclose(exp_form, np_sinkhorn(scores, eps, iters),
                             rtol=2e-4, atol=1e-6)
  np.testing.assert_allclose(
      exp_form, losses.sinkhorn(scores.astype(np.float32), eps, iters),
      rtol=2e-4, atol=1e-6)


def test_swav_exp_sinkhorn_overflows_where_the_log_form_does_not():
  # Unnormalised logits of size 5 at eps 0.05: exp(100) is inf in float32,
  # the paper's "without norm" NaN. The log form stays finite.
  scores = np.random.default_rng(4).normal(size=(32, 10)).astype(np.float32)
  scores[0, 0] = 5.0
  assert np.isnan(losses.swav_exp_sinkhorn(scores, 0.05, 3)).any()
  assert np.isfinite(losses.sinkhorn(scores, 0.05, 3)).all()


@pytest.mark.skipif(jax.default_backend() != 'cpu',
                    reason='flush-to-zero of float32 subnormals is the CPU '
                           "backend's behaviour, measured there")
def test_swav_exp_sinkhorn_underflows_a_cluster_before_any_score_overflows():
  # Every |S| <= 2.4, below the 88.7 * eps = 4.4 where exp overflows, but one
  # cluster sits 4.8 below the top scores: after Q / sum(Q) its column is
  # below float32's smallest normal, flushed to 0, and 0 / 0 is NaN.
  scores = np.random.default_rng(5).uniform(-1, 1, (256, 10)).astype(
      np.float32)
  scores[:, 3] = -2.4
  scores[:64, 0] = 2.4
  assert np.isnan(losses.swav_exp_sinkhorn(scores, 0.05, 3)).all()
  assert np.isfinite(losses.sinkhorn(scores, 0.05, 3)).all()
  # A range of 3 (60 * eps) is still inside float32 for the exp form.
  scores[:, 3] = -1.5
  scores[:64, 0] = 1.5
  np.testing.assert_allclose(losses.swav_exp_sinkhorn(scores, 0.05, 3),
                             losses.sinkhorn(scores, 0.05, 3), rtol=1e-3,
                             atol=1e-6)


def test_cdc_loss_without_norm_is_nan_with_exp_sinkhorn_only(views):
  c_a, s_a, c_b, s_b = views
  big = [np.asarray(c) * 100 for c in (c_a, c_b)]
  kwargs = dict(temperature=0.5, cluster_temperature=0.1,
                normalize_c=False)
  log_form = losses.cdc_loss(big[0], s_a, big[1], s_b, **kwargs)
  exp_form = losses.cdc_loss(big[0], s_a, big[1], s_b,
                             sinkhorn_arithmetic='exp', **kwargs)
  assert np.isfinite(log_form.total)
  assert np.isnan(exp_form.equipartition)
  # With c normalised both forms give the same loss.
  kwargs['normalize_c'] = True
  np.testing.assert_allclose(
      losses.cdc_loss(*views, sinkhorn_arithmetic='exp', **kwargs).total,
      losses.cdc_loss(*views, **kwargs).total, rtol=1e-5)


def test_bad_sinkhorn_arithmetic_is_rejected(views):
  with pytest.raises(ValueError, match="sinkhorn_arithmetic='other'"):
    losses.cdc_loss(*views, temperature=0.5, cluster_temperature=0.1,
                    sinkhorn_arithmetic='other')
  with pytest.raises(ValueError, match='sinkhorn_balance=0.5'):
    losses.cdc_loss(*views, temperature=0.5, cluster_temperature=0.1,
                    sinkhorn_arithmetic='exp', sinkhorn_balance=0.5)


def np_unbalanced_sinkhorn(scores, eps, iters, balance):
  """Unbalanced entropic OT (Chizat et al., 2018) in its scaling form:
  Q = diag(u) K diag(v), K = exp(S / eps); rows exactly 1/B, columns pulled
  to 1/K by a KL penalty rho: v = (1/K / K^T u) ** (rho / (rho + eps)),
  u = (1/B) / (K v). Returns B * Q."""
  scores = scores.astype(np.float64)
  b, k = scores.shape
  kernel = np.exp(scores / eps)
  u = np.ones(b)
  for _ in range(iters):
    v = ((1.0 / k) / (kernel.T @ u)) ** balance
    u = (1.0 / b) / (kernel @ v)
  return u[:, None] * kernel * v[None, :] * b


@pytest.mark.parametrize('balance,iters', [(1.0, 3), (0.5, 3), (0.2, 10),
                                           (0.7, 1)])
def test_unbalanced_sinkhorn_matches_numpy(balance, iters):
  scores = _normalize(np.random.default_rng(4).normal(size=(24, 7)))
  np.testing.assert_allclose(
      losses.sinkhorn(scores.astype(np.float32), 0.1, iters, balance),
      np_unbalanced_sinkhorn(scores, 0.1, iters, balance), rtol=2e-4,
      atol=1e-6)


def test_sinkhorn_balance_interpolates_between_softmax_and_equal_sizes():
  rng = np.random.default_rng(5)
  b, k = 128, 6
  # Imbalanced data: half of the samples prefer cluster 0.
  labels = np.where(rng.random(b) < 0.5, 0, rng.integers(1, k, b))
  scores = _normalize(np.eye(k)[labels] + 0.5 * rng.normal(size=(b, k)))
  scores = scores.astype(np.float32)
  sizes = {balance: np.asarray(losses.sinkhorn(scores, 0.1, 200, balance)).sum(0)
           for balance in (1e-6, 0.3, 0.7, 1.0)}
  # balance -> 0: only the sample constraint, i.e. softmax(S / eps).
  softmax = np.exp(scores / 0.1) / np.exp(scores / 0.1).sum(1, keepdims=True)
  np.testing.assert_allclose(sizes[1e-6], softmax.sum(0), rtol=1e-3)
  # balance = 1: equal sizes B / K.
  np.testing.assert_allclose(sizes[1.0], np.full(k, b / k), rtol=1e-3)
  # In between, the big cluster shrinks monotonically towards B / K.
  biggest = [sizes[x][0] for x in (1e-6, 0.3, 0.7, 1.0)]
  assert all(x > y for x, y in zip(biggest, biggest[1:])), biggest
  assert biggest[0] > 1.3 * b / k
  for q_sizes in sizes.values():  # Each code still sums to 1.
    np.testing.assert_allclose(q_sizes.sum(), b, rtol=1e-5)


def test_cdc_loss_passes_sinkhorn_balance(views):
  kwargs = dict(temperature=0.2, cluster_temperature=0.1)
  exact = losses.cdc_loss(*views, **kwargs).equipartition
  same = losses.cdc_loss(*views, sinkhorn_balance=1.0, **kwargs).equipartition
  relaxed = losses.cdc_loss(*views, sinkhorn_balance=0.3,
                            **kwargs).equipartition
  np.testing.assert_allclose(exact, same, rtol=1e-6)
  assert abs(float(relaxed) - float(exact)) > 1e-4


def test_sinkhorn_balance_switches_to_its_final_value(views):
  """methods.loss uses loss.sinkhorn_balance before final_from and
  loss.sinkhorn_balance_final from then on, also with a traced progress."""
  config = recipes.set_method(recipes.digits('tiny'), 'cdc',
                                    'tiny')
  config.loss.update(equipartition_warmup_fraction=0.0, sinkhorn_balance=0.5,
                     sinkhorn_balance_final=0.1,
                     sinkhorn_balance_final_from=0.6)
  lc = config.loss
  c_a, s_a, c_b, s_b = views
  outputs = ({'c': c_a, 's': s_a}, {'c': c_b, 's': s_b})
  expected = {b: float(losses.cdc_loss(
      c_a, s_a, c_b, s_b, temperature=lc.temperature,
      cluster_temperature=lc.cluster_temperature,
      sinkhorn_epsilon=lc.sinkhorn_epsilon, sinkhorn_iters=lc.sinkhorn_iters,
      sinkhorn_balance=b).total) for b in (0.5, 0.1)}
  assert abs(expected[0.5] - expected[0.1]) > 1e-4
  total = jax.jit(lambda p: methods.loss(config, *outputs, progress=p)['loss'])
  for progress, balance in ((0.0, 0.5), (0.59, 0.5), (0.6, 0.1), (0.99, 0.1)):
    np.testing.assert_allclose(float(total(jnp.float32(progress))),
                               expected[balance], rtol=1e-5)


def test_bad_sinkhorn_target_is_rejected(views):
  with pytest.raises(ValueError, match='sinkhorn_target'):
    losses.cdc_loss(*views, temperature=0.2, cluster_temperature=0.1,
                    sinkhorn_target='other')


def np_moco_v3(q_a, q_b, k_a, k_b, tau):
  """MoCo v3's loss from its definition: for each direction, cross-entropy
  of softmax over the keys of the batch with the same index as the label,
  times 2 tau; summed over the two directions."""
  def ctr(q, k):
    logits = _normalize(q) @ _normalize(k).T / tau
    return -np.mean(np.diag(np_log_softmax(logits))) * 2 * tau
  return ctr(q_a, k_b) + ctr(q_b, k_a)


@pytest.mark.parametrize('tau', [0.2, 1.0])
def test_moco_v3_contrast_matches_numpy_and_keys_get_no_gradient(tau):
  rng = np.random.default_rng(3)
  q_a, q_b, k_a, k_b = (rng.normal(size=(12, 7)) for _ in range(4))
  got = losses.moco_v3_contrast(*(jnp.asarray(x, jnp.float32)
                                  for x in (q_a, q_b, k_a, k_b)), tau)
  np.testing.assert_allclose(got, np_moco_v3(q_a, q_b, k_a, k_b, tau),
                             rtol=1e-5)
  grads = jax.grad(lambda k: losses.moco_v3_contrast(
      jnp.asarray(q_a), jnp.asarray(q_b), k, k, tau))(jnp.asarray(k_a))
  np.testing.assert_array_equal(grads, 0)
  # Perfectly aligned, well-separated pairs: the loss tends to 0.
  aligned = losses.moco_v3_contrast(*(jnp.asarray(np.eye(12)),) * 4, 0.05)
  assert float(aligned) < 1e-3


def test_cdc_loss_with_momentum_keys_uses_the_moco_v3_contrast(views):
  c_a, s_a, c_b, s_b = views
  rng = np.random.default_rng(4)
  dim = c_a.shape[1] + s_a.shape[1]
  p_a, p_b = rng.normal(size=(len(c_a), dim)), rng.normal(size=(len(c_a), dim))
  keys = [(c_b * 2, s_b), (c_a, s_a * 3)]  # Any scale: keys are normalised.
  got = losses.cdc_loss(c_a, s_a, c_b, s_b, temperature=0.2,
                        cluster_temperature=0.1, predictions=(p_a, p_b),
                        momentum_keys=keys)
  k = [np.concatenate([_normalize(c), _normalize(s)], 1) for c, s in keys]
  np.testing.assert_allclose(got.infonce, np_moco_v3(p_a, p_b, *k, 0.2),
                             rtol=1e-5)
  plain = losses.cdc_loss(c_a, s_a, c_b, s_b, temperature=0.2,
                          cluster_temperature=0.1)
  np.testing.assert_allclose(got.equipartition, plain.equipartition,
                             rtol=1e-6)


def np_lightly_nt_xent(out0, out1, tau):
  """Lightly's NTXentLoss in its own block form: both views L2-normalised,
  logits [out0.out1^T | out0.out0^T without its diagonal] / tau (and the
  same for out1), cross-entropy with the positive in column i, mean over the
  2B rows."""
  out0, out1 = _normalize(out0.astype(np.float64)), _normalize(
      out1.astype(np.float64))
  b = len(out0)
  off_diagonal = ~np.eye(b, dtype=bool)
  rows = []
  for a, other in ((out0, out1), (out1, out0)):
    cross = a @ other.T / tau
    own = (a @ a.T / tau)[off_diagonal].reshape(b, b - 1)
    logits = np.concatenate([cross, own], axis=1)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    rows.append(-log_softmax[np.arange(b), np.arange(b)])
  return np.concatenate(rows).mean()


@pytest.mark.parametrize('tau', [0.2, 0.5])
def test_renormalized_concat_is_lightlys_nt_xent_on_the_concatenation(
    views, tau):
  c_a, s_a, c_b, s_b = views
  got = losses.cdc_loss(*map(jnp.asarray, views), temperature=tau,
                        cluster_temperature=0.1, renormalize_concat=True)
  z_a = np.concatenate([_normalize(c_a), _normalize(s_a)], axis=1)
  z_b = np.concatenate([_normalize(c_b), _normalize(s_b)], axis=1)
  np.testing.assert_allclose(got.infonce, np_lightly_nt_xent(z_a, z_b, tau),
                             rtol=1e-5)
  # |[c_hat; s_hat]| = sqrt(2): the same as the plain InfoNCE at 2 tau.
  plain = losses.cdc_loss(*map(jnp.asarray, views), temperature=2 * tau,
                          cluster_temperature=0.1)
  np.testing.assert_allclose(got.infonce, plain.infonce, rtol=1e-5)
  np.testing.assert_allclose(got.equipartition, plain.equipartition,
                             rtol=1e-6)
  with pytest.raises(ValueError, match='moco_v3'):
    losses.cdc_loss(*map(jnp.asarray, views), temperature=tau,
                    cluster_temperature=0.1, renormalize_concat=True,
                    predictions=(c_a, c_b), momentum_keys=[(c_a, s_a)] * 2)


def test_renormalize_concat_reaches_the_loss_through_the_config(views):
  c_a, s_a, c_b, s_b = map(jnp.asarray, views)
  config = recipes.digits()
  outputs = [{'c': c_a, 's': s_a}, {'c': c_b, 's': s_b}]
  plain = methods.loss(config, *outputs, progress=jnp.float32(1.0))
  config.loss.renormalize_concat = True
  renormalized = methods.loss(config, *outputs, progress=jnp.float32(1.0))
  config.loss.renormalize_concat = False
  config.loss.temperature *= 2
  doubled = methods.loss(config, *outputs, progress=jnp.float32(1.0))
  assert abs(float(plain['infonce'] - renormalized['infonce'])) > 1e-3
  np.testing.assert_allclose(renormalized['infonce'], doubled['infonce'],
                             rtol=1e-5)
