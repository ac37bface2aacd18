"""The linear probe's on-device logistic regression (cdcjax/probe.py):
scikit-learn's LogisticRegression solution and accuracy, the same on 8 fake
devices as on 1."""

import jax
import numpy as np
import pytest
from sklearn import datasets
from sklearn import linear_model
from sklearn import preprocessing

from cdcjax import evaluators
from cdcjax import probe
from cdcjax import train


def _classes(n, d, k):
  x, y = datasets.make_classification(
      2 * n, d, n_informative=d // 2, n_classes=k, n_clusters_per_class=1,
      class_sep=0.8, random_state=0)
  x = preprocessing.StandardScaler().fit_transform(x).astype(np.float32)
  return x[:n], y[:n], x[n:], y[n:]


def test_same_solution_as_scikit_learn():
  x, y, test_x, test_y = _classes(1003, 24, 5)
  params, iterations = probe.fit_logistic_regression(x, y, 5)
  reference = linear_model.LogisticRegression(max_iter=1000, tol=1e-8).fit(
      x, y)
  assert iterations > 1
  # The same minimiser: the penalised weights agree, and the logits agree up
  # to the per-row shift that softmax ignores (the unpenalised intercepts'
  # common offset is not fixed by the objective).
  np.testing.assert_allclose(params['w'].T, reference.coef_, atol=2e-3)
  ours = x @ params['w'] + params['b']
  theirs = reference.decision_function(x)
  np.testing.assert_allclose(ours - ours.mean(1, keepdims=True),
                             theirs - theirs.mean(1, keepdims=True),
                             atol=5e-3)
  accuracy = np.mean(probe.predict(params, test_x) == test_y)
  assert abs(accuracy - reference.score(test_x, test_y)) <= 0.005


def test_eight_devices_give_the_one_device_fit():
  x, y, test_x, _ = _classes(803, 12, 3)
  one, _ = probe.fit_logistic_regression(
      x, y, 3, mesh=train.make_mesh(jax.devices()[:1]))
  eight, _ = probe.fit_logistic_regression(x, y, 3)
  np.testing.assert_allclose(one['w'], eight['w'], atol=1e-4)
  np.testing.assert_array_equal(probe.predict(one, test_x),
                                probe.predict(eight, test_x))


def test_evaluator_fits_on_device_from_the_threshold(monkeypatch):
  x, y, test_x, test_y = _classes(600, 12, 3)
  y, test_y = y + 4, test_y + 4  # Labels need not start at 0.
  host = evaluators.linear_probe(x, y, test_x, test_y)
  monkeypatch.setattr(evaluators, 'PROBE_ON_DEVICE_FROM', 500)
  device = evaluators.linear_probe(x, y, test_x, test_y)
  assert host['fitted_on'] == 'scikit-learn'
  assert device['fitted_on'] == 'device'
  assert device['acc'] > 0.5 and abs(device['acc'] - host['acc']) <= 0.01


def test_bad_inputs_are_named():
  with pytest.raises(ValueError, match=r'\(3,\) labels on \(4, 2\)'):
    probe.fit_logistic_regression(np.zeros((4, 2)), np.zeros(3), 2)
  with pytest.raises(ValueError, match='C > 0, got 0'):
    probe.fit_logistic_regression(np.zeros((4, 2)), np.zeros(4), 2, c=0)
