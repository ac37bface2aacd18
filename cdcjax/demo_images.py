"""A folder of generated images of three visibly different kinds (smooth
gradients, stripes, speckle), light on dark: something to cluster before you have
your own images (the notebooks' tiny switch, the cdcjax.cluster tests). A
clustering that works recovers the kinds."""

import os

import numpy as np
from PIL import Image

# Textures, so that any crop of an image still shows its kind.
KINDS = ('gradient', 'stripes', 'speckle')


def draw(kind: str, rng: np.random.Generator, side: int) -> np.ndarray:
  """One uint8 RGB image of `kind`: light on dark, in random shades of one
  random hue (instances differ in shape more than in colour, so a contrastive
  model learns the shapes)."""
  hue = rng.uniform(0.5, 1.0, 3)
  background = rng.uniform(0, 60) * hue
  foreground = rng.uniform(190, 255) * hue
  y, x = np.mgrid[0:side, 0:side] / side
  if kind == 'gradient':  # Smooth: dark to light along a random direction.
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (y - 0.5) * np.cos(angle) + (x - 0.5) * np.sin(angle) + 0.5
    return np.clip(background + np.clip(ramp, 0, 1)[..., None] *
                   (foreground - background), 0, 255).astype(np.uint8)
  elif kind == 'stripes':
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(0.4, 0.55)  # Wide: still stripes at 16 px.
    phase = (y * np.cos(angle) + x * np.sin(angle)) / period
    mask = (phase % 1.0) < 0.5
  elif kind == 'speckle':  # Pixel noise: fine, unoriented texture.
    mask = rng.random((side, side)) < 0.3
  else:
    raise ValueError(kind)
  image = np.where(mask[..., None], foreground, background)
  return np.clip(image, 0, 255).astype(np.uint8)


def write_folder(root: str, per_kind: int, side: int = 16, seed: int = 0,
                 labelled: bool = False) -> list[str]:
  """Writes per_kind PNGs of each kind into root, named KIND_NNNN.png (in
  class subfolders KIND/ when labelled); returns the kinds' names."""
  rng = np.random.default_rng(seed)
  for kind in KINDS:
    directory = os.path.join(root, kind) if labelled else root
    os.makedirs(directory, exist_ok=True)
    for i in range(per_kind):
      name = f'{kind}_{i:04d}.png'
      Image.fromarray(draw(kind, rng, side)).save(os.path.join(directory,
                                                               name))
  return list(KINDS)
