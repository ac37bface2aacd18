"""Every loss at its edges, under jax.jit: saturated logits (up to +-100),
collapsed batches, all-but-one dead clusters, exactly zero rows, batch 2,
K 2, bf16 inputs. Each draw checks that the value and the gradient are finite,
that the value matches a float64 NumPy reference of the same definition, and
that the gradient's derivative along a random direction matches the
reference's central difference (not at exactly zero rows, where the
normalisation jumps). Drawn by hypothesis (derandomised, so CI is stable)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.special import expit, logsumexp, xlogy

from cdcjax import losses
from test_peer_losses import np_self_label

VALUE_RTOL = 1e-4  # Of max(1, |reference|): float32 against float64.
GRAD_RTOL = 2e-3   # Directional derivative against the central difference.
STEP = 1e-5        # Of the central difference, in float64.

EDGES = ('normal', 'saturated', 'collapsed', 'dead_clusters', 'zero_rows')
# Every edge for every loss (pytest parameters); hypothesis draws the shapes,
# dtypes and values within it.
every_edge = pytest.mark.parametrize('edge', EDGES)
edge_cases = settings(max_examples=4, deadline=None, derandomize=True,
                      database=None)


# float64 references, written from the definitions with the same clamps.
def np_normalize(x, eps=1e-12):
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def np_log_softmax(x):
  return x - logsumexp(x, axis=1, keepdims=True)


def np_info_nce(z_a, z_b, tau):
  z = np.concatenate([z_a, z_b])
  logits = z @ z.T / tau
  np.fill_diagonal(logits, -np.inf)
  batch = len(z_a)
  positive = np.r_[np.arange(batch) + batch, np.arange(batch)]
  return -np_log_softmax(logits)[np.arange(2 * batch), positive].mean()


def np_nt_xent(z_a, z_b, tau, eps=1e-12):
  return np_info_nce(np_normalize(z_a, eps), np_normalize(z_b, eps), tau)


def np_sinkhorn(scores, eps, iters):
  """Sinkhorn-Knopp on exp(S / eps) (clusters 1/K, then samples 1/B), in
  log space so float64 does not overflow; B * Q."""
  batch, k = scores.shape
  log_q = scores / eps
  log_q = log_q - logsumexp(log_q)
  for _ in range(iters):
    log_q = log_q - np.log(k) - logsumexp(log_q, axis=0, keepdims=True)
    log_q = log_q - np.log(batch) - logsumexp(log_q, axis=1, keepdims=True)
  return np.exp(log_q) * batch


def np_cdc(c_a, s_a, c_b, s_b, codes=None, tau=0.2, tau_c=0.1):
  """CDC with lambda 1, eps 0.05, 3 rounds, swapped targets. `codes`: the
  Sinkhorn targets held fixed (the loss's stop-gradient) for differences."""
  c_a, c_b, s_a, s_b = map(np_normalize, (c_a, c_b, s_a, s_b))
  infonce = np_info_nce(np.concatenate([c_a, s_a], 1),
                        np.concatenate([c_b, s_b], 1), tau)
  if codes is None:
    codes = (np_sinkhorn(c_b, 0.05, 3), np_sinkhorn(c_a, 0.05, 3))
  equipartition = -0.5 * (
      (codes[0] * np_log_softmax(c_a / tau_c)).sum(1).mean() +
      (codes[1] * np_log_softmax(c_b / tau_c)).sum(1).mean())
  return infonce + equipartition, codes


def np_softmax(x):
  return np.exp(np_log_softmax(x))


def np_cc(z_a, z_b, logits_a, logits_b):
  y_a, y_b = np_softmax(logits_a), np_softmax(logits_b)
  instance = np_nt_xent(z_a, z_b, 0.5)
  cluster = np_nt_xent(y_a.T, y_b.T, 1.0, eps=1e-8)  # nn.CosineSimilarity.
  entropy = 0.0
  for y in (y_a, y_b):
    marginal = y.sum(0) / y.sum()
    entropy += np.log(y.shape[1]) + xlogy(marginal, marginal).sum()
  return instance + cluster + entropy


def np_binary_entropy(f):
  """Mean H(f) / log 2 (0 log 0 = 0); 1 - f as float64 computes it."""
  return -(xlogy(f, f) + xlogy(1 - f, 1 - f)).mean() / np.log(2)


def np_cd(z_a, z_b, logits_a, logits_b):
  f_a, f_b = expit(logits_a), expit(logits_b)
  instance = np_nt_xent(z_a, z_b, 0.5)
  feature = np_nt_xent(f_a.T, f_b.T, 1.0)
  entropy = np_binary_entropy

  return instance + feature - 0.5 * (entropy(f_a) + entropy(f_b))


def np_moco_v3(q_a, q_b, k_a, k_b, tau=0.2):
  def ctr(q, k):
    logits = np_normalize(q) @ np_normalize(k).T / tau
    return -np.mean(np.diag(np_log_softmax(logits))) * 2 * tau
  return ctr(q_a, k_b) + ctr(q_b, k_a)


# Inputs at the edges.
@st.composite
def edge_inputs(draw, edge, num_arrays, width=None, dtypes=('float32',)):
  """(edge, dtype, arrays): `num_arrays` (batch, width) float64 arrays at
  `edge`, with width drawn (K-like: 2 or 10) unless given."""
  batch = draw(st.sampled_from((2, 8)))
  width = width or draw(st.sampled_from((2, 10)))
  dtype = draw(st.sampled_from(dtypes))
  rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
  arrays = []
  for _ in range(num_arrays):
    x = rng.normal(size=(batch, width))
    if edge == 'saturated':
      x = 100.0 * np.sign(x) * (np.abs(x) > 0.5) + x
    elif edge == 'collapsed':  # Every row the same, up to 1e-6.
      x = np.repeat(x[:1], batch, 0) + 1e-6 * rng.normal(size=x.shape)
    elif edge == 'dead_clusters':  # All but one column far below.
      x = x - 100.0 * (np.arange(width) != rng.integers(width))
    elif edge == 'zero_rows':
      x[rng.integers(batch)] = 0.0
      x[0] = 0.0
    arrays.append(x)
  return edge, dtype, arrays


def _as_seen(arrays, dtype):
  """The arrays in `dtype` and, as float64, the values the loss sees in it."""
  inputs = [jnp.asarray(x, dtype) for x in arrays]
  return inputs, [np.asarray(x.astype(jnp.float32), np.float64)
                  for x in inputs]


@functools.cache  # Loss functions are module-level: one compile per shape.
def _jitted_value_and_grad(loss_fn, argnums):
  return jax.jit(jax.value_and_grad(loss_fn, argnums=argnums))


def _check(loss_fn, reference, edge, dtype, arrays, argnums=None):
  """jit(value_and_grad(loss_fn)) finite and equal to `reference` (float64,
  on the same arrays); its derivative along a random direction equal to the
  reference's central difference. Returns the value."""
  argnums = tuple(range(len(arrays))) if argnums is None else argnums
  inputs, arrays = _as_seen(arrays, dtype)
  value, grads = _jitted_value_and_grad(loss_fn, argnums)(*inputs)
  value, grads = float(value), [np.asarray(g, np.float64) for g in grads]
  assert np.isfinite(value), (edge, value)
  for g in grads:
    assert np.isfinite(g).all(), (edge, g)
  expected = reference(*arrays)
  assert abs(value - expected) <= VALUE_RTOL * max(1.0, abs(expected)), (
      edge, value, expected)
  if edge != 'zero_rows':
    rng = np.random.default_rng(0)
    directions = [rng.normal(size=arrays[i].shape) for i in argnums]

    def moved(sign):
      shifted = list(arrays)
      for i, v in zip(argnums, directions):
        shifted[i] = arrays[i] + sign * STEP * v
      return reference(*shifted)

    difference = (moved(1) - moved(-1)) / (2 * STEP)
    along = sum(float(np.sum(g * v)) for g, v in zip(grads, directions))
    scale = 1.0 + abs(difference) + sum(
        np.linalg.norm(g) * np.linalg.norm(v) for g, v in zip(grads,
                                                              directions))
    assert abs(along - difference) <= GRAD_RTOL * scale, (
        edge, along, difference)
  return value


# The two faults found against the official code, as plain tests.
def test_cd_entropy_is_finite_under_jit_when_a_sigmoid_rounds_to_one():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(32, 10))
  logits[0, 0] = 17.0  # float32's sigmoid rounds it to exactly 1.0.
  assert float(jax.nn.sigmoid(jnp.float32(17.0))) == 1.0
  z = rng.normal(size=(32, 16))
  entropy = jax.jit(lambda l: losses.cd_loss(
      z, z[::-1], jax.nn.sigmoid(l), jax.nn.sigmoid(l)).entropy)(
          jnp.asarray(logits, jnp.float32))
  np.testing.assert_allclose(float(entropy), np_binary_entropy(
      expit(logits)), rtol=1e-5)
  _check(lambda *x: losses.cd_loss(x[0], x[1], jax.nn.sigmoid(x[2]),
                                   jax.nn.sigmoid(x[3])).total,
         np_cd, 'normal', 'float32', [z, z[::-1], logits, logits[::-1]])


def test_cc_gradient_is_finite_with_a_dead_cluster():
  """A dead cluster's probability column (e^-100: its squares underflow in
  float32) has norm 0; the gradient of the norm there was 0 / 0."""
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(32, 10))
  logits[:, 3] = -100.0
  z = rng.normal(size=(32, 16))
  grad = jax.jit(jax.grad(lambda l: losses.cc_loss(
      z, z[::-1], jax.nn.softmax(l), jax.nn.softmax(l[::-1])).total))(
          jnp.asarray(logits, jnp.float32))
  assert np.isfinite(np.asarray(grad)).all()
  _check(lambda *x: losses.cc_loss(x[0], x[1], jax.nn.softmax(x[2]),
                                   jax.nn.softmax(x[3])).total,
         np_cc, 'dead_clusters', 'float32', [z, z[::-1], logits,
                                             logits[::-1]])


def test_l2_normalize_has_torch_values_and_a_finite_gradient_at_zero():
  x = jnp.asarray([[3.0, 4.0], [0.0, 0.0], [1e-30, 1e-30]], jnp.float32)
  np.testing.assert_allclose(losses.l2_normalize(x)[0], [0.6, 0.8], rtol=1e-6)
  np.testing.assert_array_equal(losses.l2_normalize(x)[1], [0.0, 0.0])
  # The third row's squares underflow: x / eps, as torch's F.normalize.
  np.testing.assert_allclose(losses.l2_normalize(x)[2], [1e-18, 1e-18],
                             rtol=1e-5)
  grad = jax.jit(jax.grad(lambda x: jnp.sum(losses.l2_normalize(x) *
                                             jnp.arange(6.0).reshape(3, 2))))(x)
  assert np.isfinite(np.asarray(grad)).all()


def test_cc_cluster_contrast_clamps_each_norm_at_1e_8_as_cosine_similarity():
  """A column of norm below 1e-8: nn.CosineSimilarity (the authors' code)
  divides by 1e-8, F.normalize's 1e-12 would normalise it to a unit vector."""
  rng = np.random.default_rng(2)
  y_a, y_b = (np_softmax(rng.normal(size=(16, 4))) for _ in range(2))
  y_a[:, 1] = 1e-10
  got = losses.nt_xent(y_a.T.astype(np.float32), y_b.T.astype(np.float32),
                       1.0, eps=losses.COSINE_SIMILARITY_EPS)
  np.testing.assert_allclose(float(got), np_nt_xent(y_a.T, y_b.T, 1.0, 1e-8),
                             rtol=1e-5)
  assert abs(np_nt_xent(y_a.T, y_b.T, 1.0, 1e-8) -
             np_nt_xent(y_a.T, y_b.T, 1.0, 1e-12)) > 1e-4  # 6.8e-4 here.


# The property suite. Module-level loss functions, so each compiles once per
# shape and dtype.
def _info_nce(a, b):
  return losses.info_nce(a, b, 0.2)


def _nt_xent(a, b):
  return losses.nt_xent(a, b, 0.5)


def _moco_v3(q_a, q_b, k_a, k_b):
  return losses.moco_v3_contrast(q_a, q_b, k_a, k_b, 0.2)


def _cdc(c_a, s_a, c_b, s_b):
  return losses.cdc_loss(c_a, s_a, c_b, s_b, temperature=0.2,
                         cluster_temperature=0.1).total


def _cc(z_a, z_b, logits_a, logits_b):
  return losses.cc_loss(z_a, z_b, jax.nn.softmax(logits_a),
                        jax.nn.softmax(logits_b)).total


def _cd(z_a, z_b, logits_a, logits_b):
  return losses.cd_loss(z_a, z_b, jax.nn.sigmoid(logits_a),
                        jax.nn.sigmoid(logits_b)).total


def _self_label_total(threshold, balance):
  return lambda weak, strong: losses.self_label_loss(
      weak, strong, threshold=threshold, class_balance=balance).total


_SELF_LABEL = {(t, b): _self_label_total(t, b)
               for t in (0.5, 0.99) for b in (False, True)}


@every_edge
@edge_cases
@given(data=st.data())
def test_info_nce_and_nt_xent(edge, data):
  case = data.draw(edge_inputs(edge, 2, width=8,
                               dtypes=('float32', 'bfloat16')))
  edge, dtype, (z_a, z_b) = case
  z_a, z_b = np_normalize(z_a), np_normalize(z_b)  # info_nce's callers do.
  _check(_info_nce, functools.partial(np_info_nce, tau=0.2), edge, dtype,
         [z_a, z_b])
  _check(_nt_xent, functools.partial(np_nt_xent, tau=0.5), edge, dtype,
         [z_a * 50, z_b])


@every_edge
@edge_cases
@given(data=st.data())
def test_moco_v3_contrast(edge, data):
  case = data.draw(edge_inputs(edge, 4, width=8, dtypes=('float32', 'bfloat16')))
  edge, dtype, arrays = case
  _check(_moco_v3, np_moco_v3, edge, dtype, arrays, argnums=(0, 1))


@every_edge
@edge_cases
@given(data=st.data())
def test_sinkhorn(edge, data):
  case = data.draw(edge_inputs(edge, 1))
  edge, _, (scores,) = case
  codes = jax.jit(losses.sinkhorn)(jnp.asarray(scores, jnp.float32))
  assert np.isfinite(np.asarray(codes)).all()
  np.testing.assert_allclose(codes, np_sinkhorn(scores, 0.05, 3), atol=1e-4)
  np.testing.assert_allclose(np.sum(codes, 1), 1.0, rtol=1e-5)  # Samples.
  grad = jax.jit(jax.grad(lambda s: jnp.sum(losses.sinkhorn(s) * s)))(
      jnp.asarray(scores, jnp.float32))
  assert np.isfinite(np.asarray(grad)).all()


@every_edge
@edge_cases
@given(data=st.data())
def test_swav_exp_sinkhorn_on_its_domain(edge, data):
  case = data.draw(edge_inputs(edge, 1))
  """SwAV's exp(S / eps) form on cosine scores (its inputs, |S| <= 1; its
  overflow beyond that is test_losses' business): finite, = the log form."""
  edge, _, (scores,) = case
  scores = np_normalize(scores)
  codes = jax.jit(losses.swav_exp_sinkhorn)(jnp.asarray(scores, jnp.float32))
  assert np.isfinite(np.asarray(codes)).all(), edge
  np.testing.assert_allclose(codes, np_sinkhorn(scores, 0.05, 3), atol=1e-4)


@every_edge
@edge_cases
@given(data=st.data())
def test_cdc_loss(edge, data):
  case = data.draw(edge_inputs(edge, 4, dtypes=('float32', 'bfloat16')))
  edge, dtype, arrays = case
  _, seen = _as_seen(arrays, dtype)
  _, codes = np_cdc(*seen)  # Held fixed: the loss's stop-gradient.
  _check(_cdc, lambda *x: np_cdc(*x, codes=codes)[0], edge, dtype, arrays)


@pytest.mark.parametrize('loss_fn, reference', [(_cc, np_cc), (_cd, np_cd)],
                         ids=['cc_loss', 'cd_loss'])
@every_edge
@edge_cases
@given(data=st.data())
def test_peer_losses(loss_fn, reference, edge, data):
  """z: instance outputs; the other two: cluster logits through softmax (CC)
  or feature logits through sigmoid (CD), as methods.loss feeds them."""
  _, dtype, arrays = data.draw(edge_inputs(edge, 4))
  _check(loss_fn, reference, edge, dtype, arrays)


@every_edge
@edge_cases
@given(data=st.data(), threshold=st.sampled_from((0.5, 0.99)),
       balance=st.booleans())
def test_self_label_loss(edge, data, threshold, balance):
  case = data.draw(edge_inputs(edge, 2, dtypes=('float32', 'bfloat16')))
  edge, dtype, arrays = case
  _check(_SELF_LABEL[threshold, balance],
         lambda w, s: np_self_label(w, s, threshold, balance), edge, dtype,
         arrays, argnums=(1,))


@every_edge
@edge_cases
@given(data=st.data())
def test_l2_normalize(edge, data):
  case = data.draw(edge_inputs(edge, 1, width=8))
  edge, _, (x,) = case
  weights = np.random.default_rng(0).normal(size=x.shape)
  _check(lambda x: jnp.sum(losses.l2_normalize(x) * weights),
         lambda x: float(np.sum(np_normalize(x) * weights)), edge, 'float32',
         [x])


def test_the_checker_catches_non_finite_values_and_gradients():
  """_check itself fails on the fault class it looks for: sqrt's gradient at
  0 is inf, the old entropy's 0 log 0 is NaN."""
  zeros = [np.zeros((2, 2))]
  with pytest.raises(AssertionError):
    _check(lambda x: jnp.sum(jnp.sqrt(x)), lambda x: 0.0, 'normal',
           'float32', zeros)
  with pytest.raises(AssertionError):
    _check(lambda x: jnp.sum(x * jnp.log(x)), lambda x: 0.0, 'normal',
           'float32', zeros)
