"""The figures of a run's report, from host arrays: image grids (PIL), charts
and maps (matplotlib, the optional `viz` extra), and the page that shows them.

Nothing here knows about training: `cdcjax.report` gathers the inputs (the
evaluation images, each image's cluster and confidence, the backbone
features, metrics.jsonl) and calls these functions.
"""

import html
import io
import json
import math

import numpy as np
from scipy.optimize import linear_sum_assignment

# Thumbnails are upscaled (nearest neighbour) to at least this many pixels a
# side: digits are 8x8, unreadable at their own size.
MIN_THUMBNAIL = 48


def require_matplotlib():
  """matplotlib with a file backend, or ImportError naming the extra."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        "the report needs matplotlib: pip install 'cdcjax[viz]' (or turn the "
        'report off with --config.report.enabled=False)') from e
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  return pyplot


def ranked_members(predictions: np.ndarray, confidence: np.ndarray,
                   cluster: int) -> np.ndarray:
  """Indices of the images in `cluster`, most confident first (ties: lower
  index first)."""
  members = np.flatnonzero(predictions == cluster)
  return members[np.argsort(-confidence[members], kind='stable')]


def to_uint8(images: np.ndarray) -> np.ndarray:
  """Float images in [0, 1] (N, H, W, C) -> uint8 RGB (N, H, W, 3)."""
  images = np.clip(np.round(np.asarray(images) * 255), 0, 255).astype(np.uint8)
  if images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)
  return images


def image_grid(images: np.ndarray, columns: int, side: int | None = None,
               gap: int = 2) -> np.ndarray:
  """uint8 (N, H, W, 3) -> one uint8 picture of `columns` per row, each
  thumbnail `side` pixels (default: at least MIN_THUMBNAIL, whole multiples
  of the image size so pixels stay square), white gaps between them."""
  n, height, width, _ = images.shape
  columns = max(1, min(columns, n))
  side = side or height * max(1, math.ceil(MIN_THUMBNAIL / height))
  scale_y, scale_x = max(1, side // height), max(1, side // width)
  rows = max(1, math.ceil(n / columns))
  cell_h, cell_w = height * scale_y, width * scale_x
  grid = np.full((rows * (cell_h + gap) - gap, columns * (cell_w + gap) - gap,
                  3), 255, np.uint8)
  for i, image in enumerate(images):
    r, c = divmod(i, columns)
    big = image.repeat(scale_y, axis=0).repeat(scale_x, axis=1)
    grid[r * (cell_h + gap):r * (cell_h + gap) + cell_h,
         c * (cell_w + gap):c * (cell_w + gap) + cell_w] = big
  return grid


def save_png(picture: np.ndarray, path) -> None:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  Image.fromarray(picture).save(buffer, format='PNG')
  path.write_bytes(buffer.getvalue())


def matched_confusion(predictions: np.ndarray, labels: np.ndarray,
                      num_clusters: int, num_classes: int):
  """The confusion matrix counts[class, cluster] with the clusters reordered
  so that the Hungarian matching's cluster for class i is column i (clusters
  matched to no class follow, by size). Returns (counts, cluster order)."""
  table = np.zeros((num_classes, num_clusters), np.int64)
  np.add.at(table, (labels, predictions), 1)
  classes, clusters = linear_sum_assignment(table, maximize=True)
  matched = [int(k) for _, k in sorted(zip(classes, clusters))]
  rest = [k for k in np.argsort(-table.sum(axis=0), kind='stable')
          if k not in set(matched)]
  order = np.array(matched + [int(k) for k in rest], np.int64)
  return table[:, order], order


def embedding_map(features: np.ndarray, max_points: int, seed: int):
  """A 2-D t-SNE map of at most max_points rows (a seeded subsample), after
  PCA to 50 dimensions. Returns (row indices, (n, 2) coordinates)."""
  from sklearn import decomposition, manifold  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  n = len(features)
  chosen = np.sort(rng.permutation(n)[:max_points]) if n > max_points else (
      np.arange(n))
  x = np.asarray(features[chosen], np.float64).reshape(len(chosen), -1)
  x = x - x.mean(axis=0)
  if x.shape[1] > 50 and len(chosen) > 50:
    x = decomposition.PCA(50, random_state=seed).fit_transform(x)
  perplexity = float(min(30.0, max(2.0, (len(chosen) - 1) / 3)))
  coords = manifold.TSNE(2, perplexity=perplexity, init='pca',
                         random_state=seed).fit_transform(x)
  return chosen, coords


def bar_chart(path, sizes, majority_names=None):
  plt = require_matplotlib()
  k = len(sizes)
  fig, ax = plt.subplots(figsize=(min(16, max(5, 0.35 * k + 2)), 3.2))
  ax.bar(np.arange(k), sizes, color='#4878cf')
  ax.axhline(np.sum(sizes) / k, color='grey', lw=1, ls='--',
             label='equal sizes')
  ax.set_xlabel('cluster' if majority_names is None else
                'cluster (its majority class below)')
  ax.set_ylabel('images')
  if k <= 40:
    ax.set_xticks(np.arange(k))
    if majority_names is not None:
      ax.set_xticklabels([f'{i}\n{n}' for i, n in enumerate(majority_names)],
                         fontsize=7)
  ax.legend(loc='upper right', fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def confusion_figure(path, counts, order, class_names):
  plt = require_matplotlib()
  num_classes, num_clusters = counts.shape
  fig, ax = plt.subplots(figsize=(min(18, max(5, 0.45 * num_clusters + 2.5)),
                                  min(18, max(4, 0.4 * num_classes + 1.5))))
  ax.imshow(counts, cmap='Blues', aspect='auto')
  ax.set_xlabel('cluster (matched to the class of the same column)')
  ax.set_ylabel('class')
  if num_clusters <= 40:
    ax.set_xticks(np.arange(num_clusters))
    ax.set_xticklabels([str(k) for k in order], fontsize=8)
  if num_classes <= 40:
    ax.set_yticks(np.arange(num_classes))
    ax.set_yticklabels(class_names, fontsize=8)
  if counts.size <= 400:
    top = counts.max()
    for (r, c), v in np.ndenumerate(counts):
      if v:
        ax.text(c, r, str(v), ha='center', va='center', fontsize=7,
                color='white' if v > top / 2 else 'black')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def map_figure(path, coords, colours, title, names=None):
  """Scatter of the 2-D map, coloured by integer `colours` (clusters or
  classes), with a legend where there are few of them."""
  plt = require_matplotlib()
  fig, ax = plt.subplots(figsize=(6.5, 5.5))
  values = np.unique(colours)
  # Colour by value, so that a cluster and its matched class need not differ.
  palette = plt.get_cmap('tab10' if values.max() < 10 else 'tab20')
  for v in values:
    at = colours == v
    label = names[v] if names is not None and 0 <= v < len(names) else str(v)
    ax.scatter(coords[at, 0], coords[at, 1], s=6, label=label,
               color=palette(int(v) % palette.N))
  if len(values) <= 20:
    ax.legend(markerscale=2.5, fontsize=7, loc='center left',
              bbox_to_anchor=(1.0, 0.5))
  ax.set_title(title, fontsize=10)
  ax.set_xticks([])
  ax.set_yticks([])
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def read_metrics(path) -> tuple[list, list]:
  """metrics.jsonl -> (train records, eval records); [] when absent."""
  if not path.exists():
    return [], []
  records = [json.loads(line) for line in path.read_text().splitlines()
             if line.strip()]
  return ([r for r in records if r.get('split') == 'train'],
          [r for r in records if r.get('split') == 'eval'])


TRAIN_CURVE_SKIP = ('step', 'split', 'steps_per_sec', 'selected_head')


def curves_figure(path, train_records, eval_records) -> bool:
  """Each training term over steps, and ACC / NMI / ARI per evaluation.
  Returns False (and writes nothing) when there is no record."""
  plt = require_matplotlib()
  terms = sorted({k for r in train_records for k, v in r.items()
                  if k not in TRAIN_CURVE_SKIP and isinstance(v, (int, float))})
  scores = [k for k in ('acc', 'nmi', 'ari')
            if any(k in r for r in eval_records)]
  panels = terms + (['evaluation'] if scores else [])
  if not panels:
    return False
  columns = min(4, len(panels))
  rows = math.ceil(len(panels) / columns)
  fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.6 * rows),
                           squeeze=False)
  for ax, name in zip(axes.flat, panels):
    if name == 'evaluation':
      for key in scores:
        points = [(r['step'], r[key]) for r in eval_records if key in r]
        ax.plot(*zip(*points), marker='o', label=key.upper())
      ax.set_ylim(0, 1)
      last = max([r['step'] for r in train_records + eval_records])
      ax.set_xlim(0, last * 1.05)  # A single evaluation: not a lone dot.
      ax.legend(fontsize=7)
    else:
      points = [(r['step'], r[name]) for r in train_records if name in r]
      ax.plot(*zip(*points), lw=1.2)
    ax.set_title(name, fontsize=9)
    ax.set_xlabel('step', fontsize=8)
    ax.tick_params(labelsize=7)
  for ax in list(axes.flat)[len(panels):]:
    ax.axis('off')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return True


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; }
table.summary td { padding: 2px 12px 2px 0; }
.row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.cluster { border: 1px solid #ddd; border-radius: 4px; padding: 8px 10px; }
.cluster h3 { font-size: 15px; margin: 4px 0; }
.cluster img { image-rendering: pixelated; display: block; margin: 4px 0; }
.label { color: #666; font-size: 12px; }
img.figure { max-width: 100%; }
"""


def page(title: str, summary: list, sections: list) -> str:
  """The report's index.html: summary rows (name, value) and sections
  (heading, html body). Figures are PNG files beside it."""
  rows = ''.join(f'<tr><td>{html.escape(str(k))}</td>'
                 f'<td>{html.escape(str(v))}</td></tr>' for k, v in summary)
  body = ''.join(f'<h2>{html.escape(h)}</h2>\n{b}\n' for h, b in sections)
  return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
          f'<title>{html.escape(title)}</title><style>{_STYLE}</style>'
          f'</head><body>\n<h1>{html.escape(title)}</h1>\n'
          f'<table class="summary">{rows}</table>\n{body}</body></html>\n')


def figure_html(file_name: str, alt: str) -> str:
  return (f'<img class="figure" src="{html.escape(file_name)}" '
          f'alt="{html.escape(alt)}">')
