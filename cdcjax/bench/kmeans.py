"""k-means on planted clusters: cdcjax's on-device k-means against
scikit-learn's KMeans(n_init=10), and with --against=ott ott-jax's
`k_means`, in the same run.

  python -m cdcjax.bench kmeans --points=20000 --dim=256 --clusters=500
  python -m cdcjax.bench kmeans --points=50000 --dim=1000 --clusters=1000 \
      --sklearn_inits=1     # ImageNet's kmeans_head; sklearn's 10 inits: hours
  CDCJAX_DATA_DIR=../shared/datasets python -m cdcjax.bench kmeans --data=usps
  python -m cdcjax.bench kmeans --against=ott     # needs `pip install ott-jax`
  python -m cdcjax.bench probe --points=50000 --dim=512 --clusters=10

Points: scikit-learn's make_blobs (centres uniform in [-10, 10]^d, isotropic
Gaussian clusters of --std), or with --data=digits / usps the pixels of
digits (all 1,797) or USPS's test split, K their class count. For each seed,
times `evaluators.kmeans` (the first call includes compilation, reported
apart; --nocompiled_timing times only that first call, for sizes where
compiling is negligible) and `sklearn.cluster.KMeans(n_init=--sklearn_inits)`
(0: not run), and reports each one's ACC and NMI against the planted
clusters (the labels), its inertia and the time ratio. --against=ott adds
ott-jax's `ott.tools.k_means.k_means` with the same settings (k-means++, 10
inits vmapped, tol 1e-4, at most 300 iterations), jitted on the same device,
timed like cdcjax's (first call apart). `probe` times the
linear probe's logistic regression the same way (--clusters: classes).
"""

import time

import numpy as np
from sklearn import cluster as sk_cluster
from sklearn import datasets
from sklearn import metrics

from cdcjax import metrics as metrics_lib


def _inertia(x, labels):
  total = 0.0
  for k in np.unique(labels):
    members = x[labels == k]
    total += float(np.sum((members - members.mean(axis=0)) ** 2))
  return total


def _real_images(name: str):
  """Flattened pixels and labels of digits (all 1,797) or USPS's test split
  (2,007; from $CDCJAX_DATA_DIR/usps.npz)."""
  import os  # pylint: disable=g-import-not-at-top
  from cdcjax import data as data_lib  # pylint: disable=g-import-not-at-top
  if name == 'digits':
    source = data_lib.load_digits()
  elif name == 'usps':
    root = os.environ.get(data_lib.DATA_DIR_ENV, '')
    source = data_lib.load_npz(os.path.join(root, 'usps.npz'), 'test')
  else:
    raise ValueError(f"--data={name!r}; allowed: 'blobs', 'digits', 'usps'")
  images = data_lib.to_float(source.images)
  return images.reshape(len(images), -1), source.labels


def _import_ott_k_means():
  """ott-jax's k-means module; a clear error where ott-jax is not installed."""
  try:
    from ott.tools import k_means as ott_k_means  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise SystemExit(f'--against=ott needs ott-jax ({error}); allowed: '
                     "'' or 'ott' with `pip install ott-jax`") from error
  return ott_k_means


def _ott_kmeans(ott_k_means, clusters: int):
  """ott-jax's k-means, jitted, as a function of (points, seed) returning
  host assignments."""
  import jax  # pylint: disable=g-import-not-at-top

  @jax.jit
  def run(x, key):
    return ott_k_means.k_means(x, clusters, n_init=10, tol=1e-4,
                               max_iterations=300, rng=key).assignment

  return lambda x, seed: np.asarray(run(x, jax.random.key(seed)))


def _timed(call, first: bool, compiled_timing: bool):
  """(labels, seconds, first call's seconds or None): on the first seed the
  call compiles, so a second, compiled call is timed unless compiled_timing
  is off."""
  start = time.perf_counter()
  labels = call()
  seconds = time.perf_counter() - start
  first_s = seconds if first else None
  if first and compiled_timing:
    start = time.perf_counter()
    labels = call()
    seconds = time.perf_counter() - start
  return labels, seconds, first_s


def _scores(name: str, x, y, labels, clusters: int) -> dict:
  return {f'{name}_acc': metrics_lib.clustering_metrics(labels, y,
                                                        clusters)['acc'],
          f'{name}_nmi': metrics.normalized_mutual_info_score(y, labels),
          f'{name}_inertia': _inertia(x, labels)}


def bench_kmeans(points: int, dim: int, clusters: int, std: float, seeds,
                 sklearn_inits: int = 10, compiled_timing: bool = True,
                 data: str = 'blobs', against: str = '') -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  from cdcjax import evaluators  # pylint: disable=g-import-not-at-top
  if against not in ('', 'ott'):
    raise SystemExit(f"kmeans --against={against!r}; allowed: '' or 'ott'")
  # A missing ott-jax fails before any work.
  ott_k_means = _import_ott_k_means() if against == 'ott' else None
  if data == 'blobs':
    x, y = datasets.make_blobs(points, dim, centers=clusters, cluster_std=std,
                               random_state=0)
  else:
    x, y = _real_images(data)
    points, dim, clusters = x.shape[0], x.shape[1], int(y.max()) + 1
  x = x.astype(np.float32)
  ott = _ott_kmeans(ott_k_means, clusters) if ott_k_means else None
  runs = []
  for i, seed in enumerate(seeds):
    ours, ours_s, first_call_s = _timed(
        lambda: evaluators.kmeans(x, clusters, seed), i == 0, compiled_timing)  # pylint: disable=cell-var-from-loop
    if i == 0:
      first_s = first_call_s
    scores = {'seed': seed, 'cdcjax_s': ours_s,
              **_scores('cdcjax', x, y, ours, clusters)}
    if ott:
      ott_labels, ott_s, ott_first_s = _timed(
          lambda: ott(x, seed), i == 0, compiled_timing)  # pylint: disable=cell-var-from-loop
      scores.update(ott_s=ott_s, **_scores('ott', x, y, ott_labels, clusters))
      if i == 0:
        scores['ott_first_call_s'] = ott_first_s
      print(f"seed {seed}: ott-jax {ott_s:.2f} s (ACC "
            f"{scores['ott_acc']:.4f}, NMI {scores['ott_nmi']:.4f}, inertia "
            f"{scores['ott_inertia']:.4g}) against cdcjax {ours_s:.2f} s: "
            f"cdcjax {ott_s / ours_s:.2f}x faster", flush=True)
    if not sklearn_inits:  # No scikit-learn (the accelerator measurement).
      runs.append(scores)
      print(f"seed {seed}: cdcjax {ours_s:.2f} s (ACC "
            f"{runs[-1]['cdcjax_acc']:.4f}, NMI {runs[-1]['cdcjax_nmi']:.4f}, "
            f"inertia {runs[-1]['cdcjax_inertia']:.4g}); scikit-learn not run",
            flush=True)
      continue
    start = time.perf_counter()
    theirs = sk_cluster.KMeans(clusters, n_init=sklearn_inits,
                               random_state=seed).fit(x)
    sklearn_s = time.perf_counter() - start
    run = {**scores, 'sklearn_s': sklearn_s,
           'sklearn_acc': metrics_lib.clustering_metrics(
               theirs.labels_, y, clusters)['acc'],
           'speedup': sklearn_s / ours_s,
           'sklearn_nmi': metrics.normalized_mutual_info_score(
               y, theirs.labels_),
           'sklearn_inertia': float(theirs.inertia_),
           'sklearn_iterations': int(theirs.n_iter_)}
    runs.append(run)
    print(f"seed {seed}: cdcjax {ours_s:.2f} s (ACC {run['cdcjax_acc']:.4f}, "
          f"NMI {run['cdcjax_nmi']:.4f}, inertia "
          f"{run['cdcjax_inertia']:.4g}), scikit-learn "
          f"KMeans(n_init={sklearn_inits}) {sklearn_s:.2f} s (ACC "
          f"{run['sklearn_acc']:.4f}, NMI {run['sklearn_nmi']:.4f}, inertia "
          f"{run['sklearn_inertia']:.4g}, "
          f"{run['sklearn_iterations']} iterations): "
          f"{run['speedup']:.2f}x", flush=True)
  devices = jax.devices()
  summary = {'data': data, 'points': points, 'dim': dim,
             'clusters': clusters, 'std': std,
             'sklearn_inits': sklearn_inits, 'against': against,
             'first_call_s': first_s,
             'devices': f'{len(devices)} x {devices[0].device_kind}',
             'runs': runs}
  if ott:
    ratios = [r['ott_s'] / r['cdcjax_s'] for r in runs]
    gaps = [r['cdcjax_nmi'] - r['ott_nmi'] for r in runs]
    print(f'{data}: {points} x {dim}, K = {clusters}: ott-jax first call '
          f"(compiling) {runs[0]['ott_first_call_s']:.2f} s; cdcjax "
          f'{np.mean(ratios):.2f}x faster than ott-jax (min {min(ratios):.2f}), '
          f'NMI cdcjax - ott-jax {np.mean(gaps):+.4f} (worst {min(gaps):+.4f})',
          flush=True)
  if not sklearn_inits:
    return summary
  speedups = [r['speedup'] for r in runs]
  gaps = [r['cdcjax_nmi'] - r['sklearn_nmi'] for r in runs]
  print(f'{data}: {points} x {dim}, K = {clusters}, std {std}, on '
        f"{summary['devices']}: first call (compiling) {first_s:.2f} s; "
        f'speed-up {np.mean(speedups):.2f}x (min {min(speedups):.2f}), NMI '
        f'cdcjax - scikit-learn {np.mean(gaps):+.4f} (worst '
        f'{min(gaps):+.4f})')
  return summary


def bench_probe(points: int, dim: int, classes: int, seeds) -> dict:
  """The linear probe's fit: cdcjax's on-device logistic regression against
  scikit-learn's LogisticRegression(max_iter=1000), on make_classification
  data standardised as the evaluator does (`points` to fit, as many to
  score)."""
  from sklearn import linear_model  # pylint: disable=g-import-not-at-top
  from sklearn import preprocessing  # pylint: disable=g-import-not-at-top
  from cdcjax import probe  # pylint: disable=g-import-not-at-top
  x, y = datasets.make_classification(
      2 * points, dim, n_informative=min(dim // 2, 40), n_classes=classes,
      n_clusters_per_class=1, class_sep=0.8, random_state=0)
  x = preprocessing.StandardScaler().fit_transform(x).astype(np.float32)
  fit_x, fit_y, test_x, test_y = x[:points], y[:points], x[points:], y[points:]
  start = time.perf_counter()
  probe.fit_logistic_regression(fit_x, fit_y, classes)
  first_s = time.perf_counter() - start
  runs = []
  for seed in seeds:  # Deterministic fits: repeats of the timing.
    start = time.perf_counter()
    params, iterations = probe.fit_logistic_regression(fit_x, fit_y, classes)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    model = linear_model.LogisticRegression(max_iter=1000).fit(fit_x, fit_y)
    sklearn_s = time.perf_counter() - start
    run = {'repeat': seed, 'cdcjax_s': ours_s, 'sklearn_s': sklearn_s,
           'speedup': sklearn_s / ours_s, 'cdcjax_iterations': iterations,
           'cdcjax_acc': float(np.mean(probe.predict(params, test_x) ==
                                       test_y)),
           'sklearn_acc': float(model.score(test_x, test_y))}
    runs.append(run)
    print(f"cdcjax {ours_s:.2f} s ({iterations} L-BFGS iterations, ACC "
          f"{run['cdcjax_acc']:.4f}), scikit-learn {sklearn_s:.2f} s (ACC "
          f"{run['sklearn_acc']:.4f}): {run['speedup']:.2f}x", flush=True)
  print(f'{points} x {dim}, {classes} classes: first call (compiling) '
        f'{first_s:.2f} s; speed-up '
        f"{np.mean([r['speedup'] for r in runs]):.2f}x", flush=True)
  return {'points': points, 'dim': dim, 'classes': classes,
          'first_call_s': first_s, 'runs': runs}
