"""CC, CD and self-labeling losses against NumPy references written from the
definitions in ../shared/notes/methods.md (loops, float64), plus properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cdcjax import losses


def np_nt_xent(a, b, tau):
  """Mean over the 2N anchors of -log softmax (cosine / tau) at the positive,
  the row itself excluded from the candidates."""
  z = np.concatenate([a, b]).astype(np.float64)
  z /= np.linalg.norm(z, axis=1, keepdims=True)
  n = len(z)
  total = 0.0
  for i in range(n):
    pos = (i + n // 2) % n
    denom = sum(np.exp(z[i] @ z[j] / tau) for j in range(n) if j != i)
    total -= np.log(np.exp(z[i] @ z[pos] / tau) / denom)
  return total / n


def np_softmax(x):
  e = np.exp(x - x.max(1, keepdims=True))
  return e / e.sum(1, keepdims=True)


def np_cc(z_a, z_b, y_a, y_b, tau_i, tau_c):
  instance = np_nt_xent(z_a, z_b, tau_i)
  cluster = np_nt_xent(y_a.T, y_b.T, tau_c)   # columns are the "samples"
  k = y_a.shape[1]
  entropy = 0.0
  for y in (y_a, y_b):
    p = y.sum(0) / y.sum()
    h = -sum(p[j] * np.log(p[j]) for j in range(k))
    entropy += np.log(k) - h   # minimising this maximises H(marginal)
  return instance + cluster + entropy, instance, cluster, entropy


def np_cd(z_a, z_b, f_a, f_b, tau_i, tau_f):
  instance = np_nt_xent(z_a, z_b, tau_i)
  feature = np_nt_xent(f_a.T, f_b.T, tau_f)
  def norm_entropy(f):
    f = f.astype(np.float64)
    return np.mean(-(f * np.log(f) + (1 - f) * np.log(1 - f))) / np.log(2)
  entropy = 0.5 * (norm_entropy(f_a) + norm_entropy(f_b))
  return instance + feature - entropy, instance, feature, entropy


def np_self_label(weak, strong, threshold, balance):
  p = np_softmax(weak.astype(np.float64))
  keep = [i for i in range(len(p)) if p[i].max() > threshold]
  if not keep:
    return 0.0
  targets = [int(np.argmax(p[i])) for i in keep]
  log_q = np.log(np_softmax(strong.astype(np.float64)))
  weights = [len(keep) / targets.count(t) if balance else 1.0 for t in targets]
  num = sum(w * -log_q[i, t] for w, i, t in zip(weights, keep, targets))
  return num / sum(weights)


@pytest.fixture
def batch():
  rng = np.random.default_rng(0)
  b, d, k = 10, 6, 4
  z_a = rng.normal(size=(b, d)).astype(np.float32)
  z_b = (z_a + 0.5 * rng.normal(size=(b, d))).astype(np.float32)
  logits_a = 2 * rng.normal(size=(b, k))
  logits_b = logits_a + rng.normal(size=(b, k))
  return z_a, z_b, logits_a.astype(np.float32), logits_b.astype(np.float32)


@pytest.mark.parametrize('tau_i,tau_c', [(0.5, 1.0), (0.2, 0.5)])
def test_cc_loss_matches_numpy(batch, tau_i, tau_c):
  z_a, z_b, l_a, l_b = batch
  y_a, y_b = np_softmax(l_a).astype(np.float32), np_softmax(l_b).astype(np.float32)
  got = losses.cc_loss(z_a, z_b, y_a, y_b, instance_temperature=tau_i,
                       cluster_temperature=tau_c)
  expected = np_cc(z_a, z_b, y_a, y_b, tau_i, tau_c)
  for value, ref in zip(got, expected):
    np.testing.assert_allclose(value, ref, rtol=1e-5, atol=1e-6)


def test_cc_entropy_term_sign():
  """Uniform marginals cost nothing; a collapsed marginal costs up to log K per
  view, so minimising the loss spreads the clusters."""
  k = 5
  uniform = np.full((20, k), 1.0 / k, np.float32)
  z = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
  assert abs(float(losses.cc_loss(z, z, uniform, uniform).entropy)) < 1e-6
  collapsed = np.full((20, k), 1e-6, np.float32)
  collapsed[:, 0] = 1.0
  gap = float(losses.cc_loss(z, z, collapsed, collapsed).entropy)
  assert gap > 1.9 * np.log(k)


@pytest.mark.parametrize('tau_i,tau_f', [(0.5, 1.0), (0.3, 0.7)])
def test_cd_loss_matches_numpy(batch, tau_i, tau_f):
  z_a, z_b, l_a, l_b = batch
  f_a = jax.nn.sigmoid(l_a)
  f_b = jax.nn.sigmoid(l_b)
  got = losses.cd_loss(z_a, z_b, f_a, f_b, instance_temperature=tau_i,
                       feature_temperature=tau_f)
  expected = np_cd(z_a, z_b, np.asarray(f_a), np.asarray(f_b), tau_i, tau_f)
  for value, ref in zip(got, expected):
    np.testing.assert_allclose(value, ref, rtol=1e-5, atol=1e-6)


def test_cd_normalised_entropy_limits():
  z = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
  half = np.full((8, 6), 0.5, np.float32)
  np.testing.assert_allclose(losses.cd_loss(z, z, half, half).entropy, 1.0,
                             rtol=1e-6)
  certain = np.zeros((8, 6), np.float32)
  assert float(losses.cd_loss(z, z, certain, certain).entropy) < 1e-6


@pytest.mark.parametrize('balance', [True, False])
@pytest.mark.parametrize('threshold', [0.5, 0.9])
def test_self_label_loss_matches_numpy(batch, balance, threshold):
  _, _, weak, strong = batch
  weak = 3 * weak  # Some samples confident, some not.
  got = losses.self_label_loss(weak, strong, threshold=threshold,
                               class_balance=balance)
  expected = np_self_label(weak, strong, threshold, balance)
  assert 0 < float(got.confident_fraction) < 1
  np.testing.assert_allclose(got.total, expected, rtol=1e-5)


def test_self_label_loss_is_zero_without_confident_samples(batch):
  _, _, _, strong = batch
  weak = np.zeros_like(strong)  # Uniform softmax: confidence 1/K < threshold.

  def loss(strong):
    return losses.self_label_loss(weak, strong, threshold=0.99).total

  value, grad = jax.value_and_grad(loss)(jnp.asarray(strong))
  assert float(value) == 0.0
  assert np.all(np.asarray(grad) == 0.0)
  assert np.isfinite(np.asarray(grad)).all()


def test_self_label_gradient_only_through_strong_view(batch):
  _, _, weak, strong = batch
  grad_weak = jax.grad(lambda w: losses.self_label_loss(
      w, strong, threshold=0.5).total)(jnp.asarray(3 * weak))
  assert np.all(np.asarray(grad_weak) == 0.0)
