"""Augmentation recipes in NumPy and PIL, run on the host inside grain workers.

Every function takes float images (N, H, W, C) in [0, 1] and a NumPy
Generator, and draws independent parameters per image. `augment(images, rng,
aug_config, view)` applies the recipe named by aug_config.recipe; `view` (0 or
1) matters only for asymmetric recipes (moco_v3).

  digits       affine jitter, stroke intensity and contrast, random erasing,
               noise (small grey digits; the config's aug.* fields).
  simclr       SimCLR's recipe as the CDC and CC papers use it on CIFAR:
               RandomResizedCrop(scale aug.crop_scale, ratio 3/4..4/3),
               horizontal flip p 0.5, ColorJitter(0.8 s, 0.8 s, 0.8 s, 0.2 s)
               with p 0.8 in random order, grayscale p 0.2
               (s = aug.color_strength), Gaussian blur p aug.blur_prob (0: the
               CIFAR recipe has none).
  cc           the CC / CD papers' recipe: simclr with s = 0.5, crop scale
               (0.08, 1), no blur; with aug.output_size = 224 it is their
               224-pixel variant (the crop is resized to 224 x 224).
  moco_v2      MoCo v2: crop scale (0.2, 1), ColorJitter(0.4, 0.4, 0.4, 0.1)
               p 0.8, grayscale p 0.2, blur p 0.5, flip.
  moco_v3      MoCo v3 / BYOL, asymmetric: crop scale (0.08, 1),
               ColorJitter(0.4, 0.4, 0.2, 0.1) p 0.8, grayscale p 0.2, blur
               p 1.0 (view 0) / 0.1 (view 1), solarize p 0 / 0.2, flip.
  scan_strong  SCAN's strong view: flip, RandAugment with 4 ops of random
               magnitude, Cutout (cdcjax/randaugment.py).

Blur is a Gaussian with sigma uniform in [0.1, 2.0] pixels at 224 x 224
(scaled with the image side), kernel ~10% of the side, reflect padding.
Solarize inverts values >= 128/255 (PIL's threshold). aug.output_size > 0
resizes the crop to that side (0: the input size). With aug.color_on_device
the colour steps (jitter, grayscale, blur, solarize) run in the jitted train
step instead (cdcjax/augment_jax.py); the host then does only the geometry.
RGB views larger than 64 x 64 are made per image with PIL on 8 bits
(pil_view, torchvision's PIL path, the same draws); smaller ones in batched
float NumPy.
"""

import dataclasses

import numpy as np
from PIL import Image
from PIL import ImageEnhance

from cdcjax import randaugment
from cdcjax.image_ops import bilinear_sample
from cdcjax.image_ops import grayscale as _grayscale

CONTRASTIVE_RECIPES = ('simclr', 'cc', 'moco_v2', 'moco_v3')
RECIPES = ('digits', *CONTRASTIVE_RECIPES, 'scan_strong')


def random_affine(images, rng, *, max_rotation_deg, scale_range, max_shear_deg,
                  max_translate):
  """Random rotation, scale, shear and translation (fraction of the side),
  bilinear, zero fill, one independent transform per image."""
  n, h, w, _ = images.shape
  theta = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, n))
  shear = np.deg2rad(rng.uniform(-max_shear_deg, max_shear_deg, n))
  scale = rng.uniform(scale_range[0], scale_range[1], n)
  ty = rng.uniform(-max_translate, max_translate, n) * h
  tx = rng.uniform(-max_translate, max_translate, n) * w
  # Forward map A = R(theta) @ Shear @ scale; sample the input at A^-1 (p - t).
  cos, sin, tan = np.cos(theta), np.sin(theta), np.tan(shear)
  a = np.stack([np.stack([cos, -sin + cos * tan], -1),
                np.stack([sin, cos + sin * tan], -1)], -2) * scale[:, None, None]
  inv = np.linalg.inv(a)
  cy, cx = (h - 1) / 2, (w - 1) / 2
  yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing='ij')
  py, px = yy[None] - ty[:, None, None], xx[None] - tx[:, None, None]
  src_y = inv[:, 0, 0, None, None] * py + inv[:, 0, 1, None, None] * px + cy
  src_x = inv[:, 1, 0, None, None] * py + inv[:, 1, 1, None, None] * px + cx
  return bilinear_sample(images, src_y, src_x)


def digits(images: np.ndarray, rng: np.random.Generator,
           aug_config) -> np.ndarray:
  """Augmentation for small grey digits: affine jitter, stroke intensity and
  contrast changes, random erasing of a square, additive noise."""
  n, h, w, _ = images.shape
  x = random_affine(images, rng, max_rotation_deg=aug_config.rotation_deg,
                    scale_range=aug_config.scale_range,
                    max_shear_deg=aug_config.shear_deg,
                    max_translate=aug_config.translate)
  gain = rng.uniform(*aug_config.intensity_range, (n, 1, 1, 1))
  gamma = np.exp(rng.uniform(-aug_config.log_gamma, aug_config.log_gamma,
                             (n, 1, 1, 1)))
  x = np.clip(x, 0.0, 1.0) ** gamma * gain
  if aug_config.erase_prob > 0:
    side = max(1, int(round(aug_config.erase_fraction * h)))
    top = rng.integers(0, h - side + 1, n)
    left = rng.integers(0, w - side + 1, n)
    rows, cols = np.arange(h)[None, :], np.arange(w)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)
    erase = in_rows[:, :, None] & in_cols[:, None, :]
    erase &= (rng.uniform(size=n) < aug_config.erase_prob)[:, None, None]
    x = np.where(erase[..., None], 0.0, x)
  x = x + rng.normal(0.0, aug_config.noise_std, x.shape)
  return x.astype(np.float32)


def crop_boxes(rng, n, h, w, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
               attempts=10):
  """torchvision's RandomResizedCrop boxes (top, left, height, width), each
  (N,): area fraction in `scale`, log-uniform aspect ratio; after `attempts`
  misses, a central crop with the ratio clamped to `ratio` (torchvision's
  fallback)."""
  area = h * w
  target = rng.uniform(scale[0], scale[1], (attempts, n)) * area
  aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]),
                              (attempts, n)))
  cw = np.round(np.sqrt(target * aspect))
  ch = np.round(np.sqrt(target / aspect))
  ok = (cw > 0) & (ch > 0) & (cw <= w) & (ch <= h)
  first = np.argmax(ok, axis=0)
  found = ok[first, np.arange(n)]
  cw, ch = cw[first, np.arange(n)], ch[first, np.arange(n)]
  # Fallback: the whole image, cropped to the allowed aspect ratio.
  in_ratio = w / h
  fb_w = np.where(in_ratio < ratio[0], w, np.where(
      in_ratio > ratio[1], np.round(h * ratio[1]), w))
  fb_h = np.where(in_ratio < ratio[0], np.round(w / ratio[0]), h)
  cw, ch = np.where(found, cw, fb_w), np.where(found, ch, fb_h)
  top = np.where(found, np.floor(rng.uniform(size=n) * (h - ch + 1)),
                 (h - ch) // 2)
  left = np.where(found, np.floor(rng.uniform(size=n) * (w - cw + 1)),
                  (w - cw) // 2)
  return top, left, ch, cw


def random_resized_crop(images, rng, scale=(0.08, 1.0),
                        ratio=(3 / 4, 4 / 3), attempts=10, out_size=0):
  """torchvision's RandomResizedCrop (crop_boxes), resized to out_size (0:
  the input size)."""
  n, h, w, _ = images.shape
  boxes = crop_boxes(rng, n, h, w, scale, ratio, attempts)
  return pil_resample(images, *boxes, out_size or h, out_size or w)


def pil_resample(images, top, left, height, width, out_h, out_w):
  """Resamples the box (top, left, height, width) of each image (arrays of N
  floats, pixel units) to out_h x out_w with PIL's bilinear filter on float
  ('F' mode) planes, as torchvision's resized_crop on PIL images: plain
  bilinear with half-pixel centres and edge clamp when enlarging (the same
  values as bilinear_sample with clamp=True, tests/test_augment.py),
  antialiased when shrinking.
  Per image and channel in C: ~5x faster than batched NumPy at 224 px."""
  x = np.asarray(images, np.float32)
  out = np.empty((len(x), out_h, out_w, x.shape[-1]), np.float32)
  for i, image in enumerate(x):
    box = _pil_box(top[i], left[i], height[i], width[i])
    for c in range(x.shape[-1]):
      plane = Image.fromarray(np.ascontiguousarray(image[:, :, c]), mode='F')
      out[i, :, :, c] = np.asarray(plane.resize(
          (out_w, out_h), Image.Resampling.BILINEAR, box=box))
  return out


def _pil_box(top, left, height, width):
  """PIL's (left, upper, right, lower) box in float pixel units."""
  return (float(left), float(top), float(left + width), float(top + height))


# The colour operations below take the array module `xp` (numpy or
# jax.numpy), so the host path and cdcjax/augment_jax.py share one definition.


def _rgb_to_hsv(x, xp=np):
  """colorsys's rgb_to_hsv on arrays (..., 3) -> hue, sat, val in [0, 1]."""
  planar = xp.moveaxis(x, -1, 0)
  if xp is np:  # Contiguous channel planes: every pass below reads less.
    planar = np.ascontiguousarray(planar)
  r, g, b = planar[0], planar[1], planar[2]
  maxc = xp.maximum(xp.maximum(r, g), b)
  delta = maxc - xp.minimum(xp.minimum(r, g), b)
  safe = xp.where(delta > 0, delta, 1.0)
  # colorsys's branches (r, then g, then b is the maximum), in sixths.
  is_r, is_g = maxc == r, maxc == g
  numerator = xp.where(is_r, g - b, xp.where(is_g, b - r, r - g))
  two, four = (xp.asarray(v, x.dtype) for v in (2.0, 4.0))
  offset = xp.where(is_r, 0 * two, xp.where(is_g, two, four))
  hue = xp.where(delta > 0, ((offset + numerator / safe) / 6.0) % 1.0, 0.0)
  sat = xp.where(maxc > 0, delta / xp.where(maxc > 0, maxc, 1.0), 0.0)
  return hue, sat, maxc


def _hsv_to_rgb(hue, sat, val, xp=np):
  """Per channel n in (5, 3, 1) for (R, G, B): v - v s clip(min(k, 4 - k),
  0, 1) with k = (n + 6 h) mod 6; the same values as the six-sector formula
  of colorsys, in a few array passes."""
  channels = []
  for n in (5, 3, 1):
    k = (n + hue * 6.0) % 6.0
    channels.append(val - val * sat * xp.clip(xp.minimum(k, 4.0 - k), 0, 1))
  return xp.stack(channels, -1)


def _adjust(x, op, factor, xp=np):
  """op 0 brightness, 1 contrast, 2 saturation, 3 hue; one factor per image."""
  f = factor[:, None, None, None]
  if op == 0:  # Brightness.
    return xp.clip(x * f, 0, 1)
  if op == 1:  # Contrast: blend with the mean grey level of each image.
    mean = _grayscale(x).mean(axis=(1, 2, 3), keepdims=True)
    return xp.clip(mean + f * (x - mean), 0, 1)
  if op == 2:  # Saturation: blend with the grey image.
    grey = _grayscale(x)
    return xp.clip(grey + f * (x - grey), 0, 1)
  hue, sat, val = _rgb_to_hsv(x, xp)  # Hue: rotate by factor (a turn fraction).
  return _hsv_to_rgb((hue + factor[:, None, None]) % 1.0, sat, val, xp)


def jitter_draws(rng, n, brightness, contrast, saturation, hue):
  """ColorJitter's random factors (4, N), uniform in [1 - x, 1 + x] (hue:
  [-hue, hue]), and each image's random order of the four ops (N, 4)."""
  factors = np.stack([rng.uniform(1 - brightness, 1 + brightness, n),
                      rng.uniform(1 - contrast, 1 + contrast, n),
                      rng.uniform(1 - saturation, 1 + saturation, n),
                      rng.uniform(-hue, hue, n)]).astype(np.float32)
  return factors, np.argsort(rng.uniform(size=(n, 4)), axis=1)


def color_jitter(images, rng, brightness, contrast, saturation, hue,
                 use_pil=False):
  """torchvision's ColorJitter: each image gets the four adjustments in its
  own random order (jitter_draws).

  Two implementations of the same draws: batched float NumPy (the functions
  cdcjax/augment_jax.py runs on the accelerator), and per image on 8 bits
  with PIL (use_pil), as torchvision does for PIL images.
  """
  factors, order = jitter_draws(rng, len(images), brightness, contrast,
                                saturation, hue)
  if use_pil:
    return np.stack([_to_float(_jitter_pil(_to_pil(image), factors[:, i],
                                           order[i]))
                     for i, image in enumerate(images)]) if len(images) else (
                         images)
  return _jitter_float(images.copy(), factors, order)


def _jitter_float(x, factors, order):
  for position in range(4):
    for op in range(4):
      chosen = np.flatnonzero(order[:, position] == op)
      if len(chosen):
        x[chosen] = _adjust(x[chosen], op, factors[op, chosen])
  return x


def _to_pil(image):
  return Image.fromarray(np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8))


def _to_float(img):
  return np.asarray(img, np.float32) * np.float32(1 / 255)


def _jitter_pil(img, factors, order):
  """The four adjustments on an 8-bit RGB PIL image: ImageEnhance's
  Brightness, Contrast (blend with the mean grey level) and Color (blend with
  the grey image), and a rotation of PIL's 8-bit HSV hue channel (256 steps
  per turn)."""
  for op in order:
    factor = float(factors[op])
    if op < 3:
      enhancer = (ImageEnhance.Brightness, ImageEnhance.Contrast,
                  ImageEnhance.Color)[op]
      img = enhancer(img).enhance(factor)
    else:
      h, s, v = img.convert('HSV').split()
      shift = int(round(factor * 256)) % 256
      h = h.point([(i + shift) % 256 for i in range(256)])
      img = Image.merge('HSV', (h, s, v)).convert('RGB')
  return img


def blur_sigmas(rng, n, side):
  """Per-image Gaussian sigmas in pixels: [0.1, 2.0] at 224, scaled."""
  return rng.uniform(0.1, 2.0, n) * side / 224


def blur_radius(side):
  return max(1, side // 20)  # Kernel 2r + 1: 23 at 224, ~10% of the side.


def blur_kernels(sigmas, radius):
  offsets = np.arange(-radius, radius + 1)
  k = np.exp(-0.5 * (offsets[None] / sigmas[:, None]) ** 2)
  return k / k.sum(axis=1, keepdims=True)


def gaussian_blur(images, sigmas):
  """Separable Gaussian blur with per-image sigmas, reflect padding."""
  n, h, w, _ = images.shape
  radius = blur_radius(min(h, w))
  kernels = blur_kernels(sigmas, radius)[:, :, None, None, None]
  x = images
  for axis in (1, 2):
    pad = [(0, 0)] * 4
    pad[axis] = (radius, radius)
    padded = np.pad(x, pad, mode='reflect')
    size = x.shape[axis]
    x = sum(kernels[:, k] * np.take(padded, np.arange(k, k + size), axis=axis)
            for k in range(2 * radius + 1))
  return x


def solarize(images, threshold=128 / 255):
  return np.where(images >= threshold, 1.0 - images, images)


@dataclasses.dataclass(frozen=True)
class ViewSpec:
  """One view of a contrastive recipe: crop area range, colour jitter
  strengths (brightness, contrast, saturation, hue) and the probabilities of
  each step."""
  crop_scale: tuple = (0.08, 1.0)
  jitter: tuple = (0.4, 0.4, 0.4, 0.1)
  jitter_prob: float = 0.8
  grey_prob: float = 0.2
  blur_prob: float = 0.0
  solarize_prob: float = 0.0


def view_spec(aug_config, view: int) -> ViewSpec:
  """The parameters of `view` (0 or 1) under aug_config.recipe."""
  recipe = aug_config.recipe
  if recipe in ('simclr', 'cc'):
    s = aug_config.color_strength if recipe == 'simclr' else 0.5
    return ViewSpec(
        crop_scale=tuple(aug_config.crop_scale) if recipe == 'simclr'
        else (0.08, 1.0), jitter=(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s),
        blur_prob=aug_config.blur_prob if recipe == 'simclr' else 0.0)
  if recipe == 'moco_v2':
    return ViewSpec(crop_scale=(0.2, 1.0), blur_prob=0.5)
  if recipe == 'moco_v3':
    return ViewSpec(jitter=(0.4, 0.4, 0.2, 0.1), blur_prob=(1.0, 0.1)[view],
                    solarize_prob=(0.0, 0.2)[view])
  raise ValueError(f'aug.recipe={recipe!r} has no contrastive view spec; '
                   f'allowed: simclr, cc, moco_v2, moco_v3')


def geometry(images, rng, spec: ViewSpec, out_size: int = 0):
  """Random resized crop and horizontal flip."""
  x = random_resized_crop(images, rng, scale=spec.crop_scale,
                          out_size=out_size)
  flip = rng.uniform(size=len(x)) < 0.5
  return np.where(flip[:, None, None, None], x[:, :, ::-1], x)


@dataclasses.dataclass(frozen=True)
class ColourDraws:
  """The random choices of `colour` for N images: which get jitter (indices,
  with their factors and op order), grayscale (mask), blur (indices, with
  their sigmas) and solarize (mask)."""
  jitter: np.ndarray
  factors: np.ndarray
  order: np.ndarray
  grey: np.ndarray
  blur: np.ndarray
  sigmas: np.ndarray
  solarize: np.ndarray


def colour_draws(rng, n: int, spec: ViewSpec, rgb: bool,
                 side: int) -> ColourDraws:
  """Jitter and grayscale only on RGB images; blur sigmas scale with side."""
  none = np.zeros(0, np.int64)
  jitter, factors, order = none, np.zeros((4, 0), np.float32), none
  grey = np.zeros(n, bool)
  if rgb:
    jitter = np.flatnonzero(rng.uniform(size=n) < spec.jitter_prob)
    factors, order = jitter_draws(rng, len(jitter), *spec.jitter)
    grey = rng.uniform(size=n) < spec.grey_prob
  blur = np.flatnonzero(rng.uniform(size=n) < spec.blur_prob)
  sigmas = blur_sigmas(rng, len(blur), side)
  sol = rng.uniform(size=n) < spec.solarize_prob
  return ColourDraws(jitter, factors, order, grey, blur, sigmas, sol)


def colour(x, rng, spec: ViewSpec):
  """Colour jitter, grayscale, blur and solarize, each with its probability
  (jitter and grayscale only on RGB images), batched in float NumPy."""
  x = np.array(x, np.float32)
  draws = colour_draws(rng, len(x), spec, x.shape[-1] == 3, min(x.shape[1:3]))
  if len(draws.jitter):
    x[draws.jitter] = _jitter_float(x[draws.jitter], draws.factors,
                                    draws.order)
  if draws.grey.any():
    x[draws.grey] = _grayscale(x[draws.grey])
  return _blur_and_solarize(x, draws)


def _blur_and_solarize(x, draws):
  if len(draws.blur):
    x[draws.blur] = gaussian_blur(x[draws.blur], draws.sigmas)
  if draws.solarize.any():
    x[draws.solarize] = solarize(x[draws.solarize])
  return x


def pil_view(images, rng, spec: ViewSpec, out_size: int = 0):
  """geometry then colour for RGB images, per image with PIL on 8 bits as
  torchvision's PIL pipeline (crop-resize, flip, ColorJitter, grayscale;
  blur and solarize then in float): the same draws, distribution within
  8-bit rounding (tests/test_augment.py), several times faster on large
  images. The host path for images larger than 64 x 64."""
  n, h, w, _ = images.shape
  out_h, out_w = out_size or h, out_size or w
  top, left, height, width = crop_boxes(rng, n, h, w, spec.crop_scale)
  flip = rng.uniform(size=n) < 0.5
  draws = colour_draws(rng, n, spec, True, min(out_h, out_w))
  jitter_of = {int(j): i for i, j in enumerate(draws.jitter)}
  out = np.empty((n, out_h, out_w, 3), np.float32)
  for i, image in enumerate(images):
    img = _to_pil(image).resize(
        (out_w, out_h), Image.Resampling.BILINEAR,
        box=_pil_box(top[i], left[i], height[i], width[i]))
    if flip[i]:
      img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if i in jitter_of:
      j = jitter_of[i]
      img = _jitter_pil(img, draws.factors[:, j], draws.order[j])
    if draws.grey[i]:
      img = img.convert('L').convert('RGB')
    out[i] = _to_float(img)
  return _blur_and_solarize(out, draws)


def resize(images, size: int):
  """Resize to size x size, bilinear as torchvision's Resize (antialiased
  when shrinking); the evaluation transform of aug.output_size."""
  n, h, w, _ = images.shape
  return pil_resample(images, np.zeros(n), np.zeros(n), np.full(n, h),
                      np.full(n, w), size, size)


def augment(images: np.ndarray, rng: np.random.Generator, aug_config,
            view: int = 0, with_colour: bool | None = None) -> np.ndarray:
  """Applies the recipe named by aug_config.recipe to make view `view`.
  Contrastive recipes skip their colour steps when with_colour is False
  (default: not aug_config.color_on_device). With colour, RGB views larger
  than 64 x 64 go through pil_view."""
  if aug_config.recipe == 'digits':
    return digits(images, rng, aug_config)
  if aug_config.recipe == 'scan_strong':
    return randaugment.scan_strong(images, rng)
  if aug_config.recipe in CONTRASTIVE_RECIPES:
    spec = view_spec(aug_config, view)
    if with_colour is None:
      with_colour = not aug_config.color_on_device
    side = aug_config.output_size or images.shape[1]
    if with_colour and side * side > 64 * 64 and images.shape[-1] == 3:
      return pil_view(images, rng, spec, aug_config.output_size)
    x = geometry(images, rng, spec, aug_config.output_size)
    if with_colour:
      x = colour(x, rng, spec)
    return x.astype(np.float32, copy=False)  # geometry made x.
  raise ValueError(f'aug.recipe={aug_config.recipe!r}; allowed: {RECIPES}')
