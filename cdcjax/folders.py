"""A folder of image files as a data source: the user's own collection.

  data.name='folder', data.path=DIR

Every .jpg/.jpeg/.png/.webp file under DIR (recursively, in sorted order) is
decoded to RGB (grey and RGBA images are converted; alpha is dropped), its
shorter side resized to data.image_size and centre-cropped to a square. When
every image sits inside a first-level subfolder, the subfolder names are the
classes (labels for ACC/NMI/ARI); otherwise the images are unlabelled and
evaluation reports cluster sizes and writes each file's cluster. Files that do
not decode are skipped with one warning each and counted; a folder with no
readable image is an error.
"""

import os

from absl import logging
import numpy as np

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.webp')
UNLABELLED = -1


def list_images(root: str) -> list[str]:
  """Image files under root (by extension, case-insensitive), sorted."""
  if not os.path.isdir(root):
    raise FileNotFoundError(f'data.path={root!r} is not a directory')
  found = []
  for directory, subdirs, files in os.walk(root):
    subdirs.sort()
    found.extend(os.path.join(directory, f) for f in sorted(files)
                 if f.lower().endswith(IMAGE_EXTENSIONS))
  return found


def fit_square(image: np.ndarray, size: int) -> np.ndarray:
  """uint8 (H, W, C) -> (size, size, C): shorter side to `size` (bilinear),
  centre crop."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  height, width, channels = image.shape
  if (height, width) == (size, size):
    return image
  scale = size / min(width, height)
  new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
  pil = Image.fromarray(image[..., 0] if channels == 1 else image)
  pil = pil.resize((new_w, new_h), Image.Resampling.BILINEAR)
  left, top = (new_w - size) // 2, (new_h - size) // 2
  out = np.asarray(pil.crop((left, top, left + size, top + size)), np.uint8)
  return out.reshape(size, size, channels)


def decode(path: str, size: int) -> np.ndarray:
  """RGB uint8 (size, size, 3): shorter side to `size`, centre crop."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:
    return fit_square(np.asarray(image.convert('RGB'), np.uint8), size)


def load_folder(root: str, image_size: int, name: str = 'folder'):
  """Returns (images uint8 (N, S, S, 3), labels, class names, paths)."""
  paths = list_images(root)
  if not paths:
    raise FileNotFoundError(
        f'data.path={root!r} holds no image file (looked recursively for '
        f'{", ".join(IMAGE_EXTENSIONS)})')
  images, kept, skipped = [], [], 0
  for path in paths:
    try:
      images.append(decode(path, image_size))
      kept.append(path)
    except Exception as e:  # pylint: disable=broad-except
      # PIL raises several types for bad files (UnidentifiedImageError,
      # OSError, SyntaxError, ValueError); any of them means: skip this file.
      skipped += 1
      logging.warning('skipping %s: not a readable image (%s: %s)', path,
                      type(e).__name__, e)
  if not kept:
    raise FileNotFoundError(
        f'data.path={root!r}: none of its {len(paths)} image files could be '
        'read')
  if skipped:
    logging.warning('%s: skipped %d of %d files that did not decode; using '
                    '%d images', name, skipped, len(paths), len(kept))
  relative = [os.path.relpath(p, root) for p in kept]
  if all(os.sep in r for r in relative):
    class_names = sorted({r.split(os.sep, 1)[0] for r in relative})
    index = {c: i for i, c in enumerate(class_names)}
    labels = np.array([index[r.split(os.sep, 1)[0]] for r in relative])
  else:
    class_names = []
    labels = np.full(len(kept), UNLABELLED)
  return np.stack(images), labels.astype(np.int64), class_names, relative
