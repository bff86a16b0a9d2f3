"""Mask image files -> bool `[H, W]`.

Lossless files (PNG, BMP, TIFF, ...): any non-zero pixel is foreground, whatever the
mode (grey 0/1 or 0/255, 16-bit labels, RGB, RGBA with the alpha ignored, palette by
colour). JPEG masks carry compression noise, so there a pixel is foreground when a
channel is above 127, or above 0 when the whole mask stays below 127 (0/1 masks, which
ARGenSeg scales by 255 for the same reason).
"""

import warnings

import numpy as np
from PIL import Image

from argenseg_jax import user_input
from argenseg_jax.image_io import MAX_PIXELS

_GREY_MODES = ('1', 'L', 'I', 'F', 'I;16', 'I;16B', 'I;16L', 'I;16N')
_LOSSY_SUFFIXES = ('.jpg', '.jpeg')


def _channel_max(img: Image.Image) -> np.ndarray:
  """Any PIL mode -> `[H, W]`, the largest channel value of each pixel."""
  if img.mode in _GREY_MODES:
    return np.asarray(img)
  return np.asarray(img.convert('RGB')).max(axis=-1)


def _foreground(pixels: np.ndarray, lossy: bool) -> np.ndarray:
  """`[H, W]` channel maxima -> bool `[H, W]` by the rules of the module docstring."""
  if not lossy or pixels.max(initial=0) < 127:
    return pixels > 0
  return pixels > 127


def read_pixels(path, origin: str, convert, what: str = 'mask',
                readable: str = 'mask image') -> np.ndarray:
  """`convert(img)` of the image file `path` (a PIL image in, an array out; a ValueError
  of it refuses the file); missing, unreadable or over-`MAX_PIXELS` files are refused
  with errors naming `origin`, the file and `what` it is."""
  path = user_input.path(path)
  if not path.is_file():
    raise FileNotFoundError(f'{origin}: {what} not found: {path}')
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('error', Image.DecompressionBombWarning)
      with path.open('rb') as f, Image.open(f) as img:
        if img.width * img.height > MAX_PIXELS:
          raise ValueError(f'{img.width}x{img.height} pixels is over the limit {MAX_PIXELS}')
        return convert(img)
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
          Image.DecompressionBombError) as e:
    raise ValueError(f'{origin}: {path} is not a readable {readable}: {e}') from None


def read_mask(path, origin: str) -> np.ndarray:
  """Reads a mask file as bool `[H, W]`; errors name `origin` and the file."""
  pixels = read_pixels(path, origin, _channel_max)
  return _foreground(pixels, user_input.path(path).suffix.lower() in _LOSSY_SUFFIXES)
