"""Safe image reading and writing (host side, numpy + PIL), local or cloud paths
(`user_input.path`)."""

import warnings

import numpy as np
from etils import epath
from PIL import Image

from argenseg_jax import user_input

# Refuse images over this many pixels (PIL's own bomb check is only a warning below 2x).
MAX_PIXELS = 8192 * 8192


class ImageError(ValueError):
  """An image that cannot be used; the message names the file and the problem."""


def to_rgb(img: Image.Image) -> Image.Image:
  """Any PIL mode -> 8-bit RGB: grey/palette/CMYK via PIL, alpha dropped, 16/32-bit
  integer and float images rescaled from their full range rather than clipped."""
  if img.mode in ('I;16', 'I;16B', 'I;16L', 'I;16N'):
    grey = (np.asarray(img, dtype=np.uint32) >> 8).astype(np.uint8)
    return Image.fromarray(grey, 'L').convert('RGB')
  if img.mode in ('I', 'F'):
    arr = np.asarray(img, dtype=np.float64)
    top = 1.0 if img.mode == 'F' and arr.max(initial=0) <= 1.0 else 65535.0
    return Image.fromarray(np.clip(arr / top * 255, 0, 255).astype(np.uint8), 'L').convert('RGB')
  if img.mode in ('RGBA', 'LA', 'PA') or (img.mode == 'P' and 'transparency' in img.info):
    return img.convert('RGBA').convert('RGB')
  return img.convert('RGB')


def read_rgb(path, max_pixels: int = MAX_PIXELS) -> Image.Image:
  """Opens `path` as an RGB PIL image, refusing missing, non-image, truncated or absurdly
  large files with an `ImageError` (or `FileNotFoundError`) that names the file."""
  path = user_input.path(path)
  if not path.is_file():
    raise FileNotFoundError(f'image not found: {path}')
  with path.open('rb') as f:
    return decode_rgb(f, str(path), max_pixels)


def decode_rgb(f, name: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
  """The image in the open binary file `f` as RGB PIL, refusing what `read_rgb` refuses
  with an `ImageError` that names it `name`."""
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('error', Image.DecompressionBombWarning)
      with Image.open(f) as img:
        if img.width * img.height > max_pixels:
          raise ImageError(f'{name}: {img.width}x{img.height} pixels is over the limit of '
                           f'{max_pixels} (a decompression bomb?); resize it first.')
        img.load()
        return to_rgb(img)
  except ImageError:
    raise
  except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
    raise ImageError(f'{name}: refused as a decompression bomb ({e}).') from None
  except (OSError, SyntaxError, ValueError) as e:
    detail = str(e).replace(f' {f!r}', '')  # PIL names the file object, not the file
    raise ImageError(f'{name} is not a readable image (truncated or not an image '
                     f'file): {detail}') from None


def as_rgb(image: 'str | epath.PathLike | np.ndarray') -> Image.Image:
  """An image given as a file path (read with `read_rgb`) or uint8 `[H, W, 3]`, as RGB PIL."""
  if isinstance(image, np.ndarray):
    return Image.fromarray(np.asarray(image, np.uint8)).convert('RGB')
  return read_rgb(image)


def write_png(path, rgb: np.ndarray) -> epath.Path:
  """Writes `uint8 [H, W, 3]` (or `[H, W]`) to `path`, creating parent folders."""
  path = user_input.path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open('wb') as f:
    Image.fromarray(np.asarray(rgb, np.uint8)).save(f, format='PNG')
  return path


def signed_to_uint8(x: np.ndarray) -> np.ndarray:
  """Images in [-1, 1] -> uint8 as the original does: `((x + 1) / 2 * 255)` truncated."""
  return ((np.clip(np.asarray(x, np.float32), -1, 1) + 1) / 2 * 255).astype(np.uint8)


def binarize(image: np.ndarray) -> np.ndarray:
  """Mask images -> bool `[..., H, W]` at ARGenSeg's threshold: luma / 255 > 0.5, the
  luma of PIL's `convert('L')` (ITU-R 601-2, rounded to an integer). `image`: uint8
  `[..., H, W, 3]`, or a decoded mask in [-1, 1] (to uint8 by `signed_to_uint8` first)."""
  rgb = np.asarray(image)
  if rgb.dtype != np.uint8:
    rgb = signed_to_uint8(rgb)
  r, g, b = (rgb[..., c].astype(np.uint32) for c in range(3))
  luma = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
  return luma.astype(np.float32) / 255.0 > 0.5


def mask_from_generated(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """A generated mask image `uint8 [256, 256, 3]` -> bool `[H, W]` for an image of
  `size = (W, H)`, as the original evaluation: PIL bilinear resize, then `binarize`."""
  resized = Image.fromarray(np.asarray(image, np.uint8)).resize(size, Image.BILINEAR)
  return binarize(np.asarray(resized))


# tint candidates: the one farthest from the masked pixels' mean colour is used
TINTS = np.array([(255, 0, 255), (0, 255, 255), (255, 255, 255), (0, 0, 0)], np.float32)


def _grow(mask: np.ndarray) -> np.ndarray:
  """`mask` and its 8 neighbours (one pixel of dilation), bool `[H, W]`."""
  padded = np.pad(mask, 1)
  h, w = mask.shape
  return np.any([padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)


def overlay(image: Image.Image, mask: np.ndarray, alpha: float = 0.3) -> np.ndarray:
  """The RGB image with `mask [H, W]` lightly tinted and outlined, `uint8 [H, W, 3]`,
  readable whatever the colours: the tint and the inner outline take the candidate of
  `TINTS` farthest from the masked pixels' mean colour, and a one-pixel ring just outside
  is black or white, whichever is farther from the pixels it covers."""
  rgb = np.asarray(image.convert('RGB'), np.float32)
  mask = np.asarray(mask, bool)
  if not mask.any():
    return rgb.astype(np.uint8)
  tint = TINTS[np.linalg.norm(TINTS - rgb[mask].mean(0), axis=1).argmax()]
  out = np.where(mask[..., None], (1 - alpha) * rgb + alpha * tint, rgb)
  edge = mask & _grow(~mask)  # mask pixels next to a background one
  ring = _grow(mask) & ~mask
  out[edge] = tint
  if ring.any():
    out[ring] = 0 if rgb[ring].mean() > 127 else 255
  return np.clip(out, 0, 255).astype(np.uint8)
