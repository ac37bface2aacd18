"""k-means on planted clusters: cdcjax's on-device k-means against
scikit-learn's KMeans(n_init=10), in the same run.

  python -m cdcjax.bench kmeans --points=20000 --dim=256 --clusters=500
  python -m cdcjax.bench kmeans --points=50000 --dim=1000 --clusters=1000 \
      --sklearn_inits=1     # ImageNet's kmeans_head; sklearn's 10 inits: hours

Points: scikit-learn's make_blobs (centres uniform in [-10, 10]^d, isotropic
Gaussian clusters of --std). For each seed, times `evaluators.kmeans` (the
first call includes compilation, reported apart) and
`sklearn.cluster.KMeans(n_init=--sklearn_inits)`, and reports each one's NMI
against the planted clusters, its inertia and the time ratio.
"""

import time

import numpy as np
from sklearn import cluster as sk_cluster
from sklearn import datasets
from sklearn import metrics


def _inertia(x, labels):
  total = 0.0
  for k in np.unique(labels):
    members = x[labels == k]
    total += float(np.sum((members - members.mean(axis=0)) ** 2))
  return total


def bench_kmeans(points: int, dim: int, clusters: int, std: float, seeds,
                 sklearn_inits: int = 10) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  from cdcjax import evaluators  # pylint: disable=g-import-not-at-top
  x, y = datasets.make_blobs(points, dim, centers=clusters, cluster_std=std,
                             random_state=0)
  x = x.astype(np.float32)
  runs = []
  for i, seed in enumerate(seeds):
    start = time.perf_counter()
    ours = evaluators.kmeans(x, clusters, seed)
    ours_s = time.perf_counter() - start
    if i == 0:  # The first call compiles; time a second, compiled one.
      first_s = ours_s
      start = time.perf_counter()
      ours = evaluators.kmeans(x, clusters, seed)
      ours_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = sk_cluster.KMeans(clusters, n_init=sklearn_inits,
                               random_state=seed).fit(x)
    sklearn_s = time.perf_counter() - start
    run = {'seed': seed, 'cdcjax_s': ours_s, 'sklearn_s': sklearn_s,
           'speedup': sklearn_s / ours_s,
           'cdcjax_nmi': metrics.normalized_mutual_info_score(y, ours),
           'sklearn_nmi': metrics.normalized_mutual_info_score(
               y, theirs.labels_),
           'cdcjax_inertia': _inertia(x, ours),
           'sklearn_inertia': float(theirs.inertia_),
           'sklearn_iterations': int(theirs.n_iter_)}
    runs.append(run)
    print(f"seed {seed}: cdcjax {ours_s:.2f} s (NMI {run['cdcjax_nmi']:.4f}, "
          f"inertia {run['cdcjax_inertia']:.4g}), scikit-learn "
          f"KMeans(n_init={sklearn_inits}) {sklearn_s:.2f} s (NMI "
          f"{run['sklearn_nmi']:.4f}, inertia {run['sklearn_inertia']:.4g}, "
          f"{run['sklearn_iterations']} iterations): "
          f"{run['speedup']:.2f}x", flush=True)
  devices = jax.devices()
  summary = {'points': points, 'dim': dim, 'clusters': clusters, 'std': std,
             'sklearn_inits': sklearn_inits, 'first_call_s': first_s,
             'devices': f'{len(devices)} x {devices[0].device_kind}',
             'runs': runs}
  speedups = [r['speedup'] for r in runs]
  gaps = [r['cdcjax_nmi'] - r['sklearn_nmi'] for r in runs]
  print(f'{points} x {dim}, K = {clusters}, std {std}, on '
        f"{summary['devices']}: first call (compiling) {first_s:.2f} s; "
        f'speed-up {np.mean(speedups):.2f}x (min {min(speedups):.2f}), NMI '
        f'cdcjax - scikit-learn {np.mean(gaps):+.4f} (worst '
        f'{min(gaps):+.4f})')
  return summary
