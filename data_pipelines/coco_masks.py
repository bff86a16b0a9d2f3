"""COCO `segmentation` annotations -> bool masks `[H, W]`, without pycocotools.

Three encodings, as in COCO `instances.json` and the PSALM / gRefCOCO files:
- polygons: `[[x0, y0, x1, y1, ...], ...]` in pixel coordinates (x right, y down, the
  image spans [0, W] x [0, H]); the mask is the union of the polygons.
- uncompressed RLE: `{'size': [H, W], 'counts': [n0, n1, ...]}`, run lengths over the
  column-major (Fortran order) pixels, starting with a run of 0s.
- compressed RLE: the same with `counts` a string: each count (from the fourth on, minus
  the count two places back) is written 5 bits per char, low bits first, as
  `chr(48 + bits | 0x20 if more chars follow)`; the last char's bit 4 is the sign.

Polygons are rasterised exactly as pycocotools' `frPyObjects` + `decode` (checked
pixel for pixel against it): vertices are snapped to a 5x grid, the edges traced as
digital lines on that grid, and a pixel is inside when its centre lies below an odd
number of edge crossings of its column. Polygons of fewer than 3 points have no area
(pycocotools would read a list whose first polygon has exactly 4 numbers as boxes).

Why not pycocotools itself: a compiled dependency for these ~100 lines of numpy, and its
polygon reader treats 4-number polygons as boxes. The tests' expected pixels were
produced with pycocotools 2.0.11 (`tests/test_data_readers.py`).
"""

import numpy as np

# pycocotools traces polygon edges on a grid this many times finer than the pixels.
_POLY_SCALE = 5
# Polygon vertices may lie this many pixels outside the image before it is an error.
POLY_TOLERANCE = 1.0


def decode_counts_string(counts: str) -> list[int]:
  """The run lengths of a compressed COCO RLE string (see the module docstring)."""
  runs, value, shift = [], 0, 0
  for char in counts:
    bits = ord(char) - 48
    if not 0 <= bits < 64:
      raise ValueError(f'compressed RLE has an invalid character {char!r}.')
    value |= (bits & 0x1F) << shift
    shift += 5
    if bits & 0x20:
      continue
    if bits & 0x10:
      value -= 1 << shift
    if len(runs) > 2:
      value += runs[-2]
    runs.append(value)
    value, shift = 0, 0
  if shift:
    raise ValueError('compressed RLE ends in the middle of a count.')
  return runs


def rle_to_mask(rle: dict, height: int, width: int) -> np.ndarray:
  """A COCO RLE dict (compressed or not) -> bool `[height, width]`."""
  size = [int(v) for v in rle.get('size', (height, width))]
  if size != [height, width]:
    raise ValueError(f'RLE size {size} differs from the image size [{height}, {width}].')
  counts = rle.get('counts')
  if counts is None:
    raise ValueError(f'RLE without "counts" (keys {sorted(rle)}).')
  if isinstance(counts, bytes):
    counts = counts.decode('ascii')
  runs = np.asarray(decode_counts_string(counts) if isinstance(counts, str) else counts,
                    np.int64)
  if (runs < 0).any() or runs.sum() != height * width:
    raise ValueError(f'RLE counts sum to {runs.sum()} (negative runs: {(runs < 0).sum()}), '
                     f'not H*W = {height}*{width} = {height * width}.')
  return _runs_to_mask(runs, height, width)


def _runs_to_mask(runs: np.ndarray, height: int, width: int) -> np.ndarray:
  """Alternating 0/1 run lengths over column-major pixels -> bool `[height, width]`."""
  flat = np.repeat(np.arange(len(runs)) % 2 == 1, runs)
  return flat.reshape(width, height).T


def _trace_edges(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Closed polygon with integer vertices `[K]` -> the digital-line points `(u, v)` of
  all its edges in order, each edge from its start to its end vertex inclusive."""
  x0, y0, x1, y1 = xs, ys, np.roll(xs, -1), np.roll(ys, -1)
  dx, dy = np.abs(x1 - x0), np.abs(y1 - y0)
  along_x = dx >= dy
  # Each edge is traced from its lower end along its major axis (as pycocotools does).
  flip = np.where(along_x, x0 > x1, y0 > y1)
  sx, sy = np.where(flip, x1, x0), np.where(flip, y1, y0)
  ex, ey = np.where(flip, x0, x1), np.where(flip, y0, y1)
  steps = np.maximum(dx, dy)
  slope = np.where(along_x, ey - sy, ex - sx) / np.maximum(steps, 1)
  counts = steps + 1
  edge = np.repeat(np.arange(len(xs)), counts)
  d = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
  t = np.where(flip[edge], steps[edge] - d, d)
  minor = np.trunc(np.where(along_x[edge], sy[edge], sx[edge]) + slope[edge] * t + 0.5)
  u = np.where(along_x[edge], sx[edge] + t, minor).astype(np.int64)
  v = np.where(along_x[edge], minor, sy[edge] + t).astype(np.int64)
  return u, v


def polygon_to_mask(coords, height: int, width: int) -> np.ndarray:
  """One polygon `[x0, y0, x1, y1, ...]` -> bool `[height, width]` (pycocotools' pixels)."""
  xy = np.asarray(coords, np.float64).reshape(-1, 2)
  # C's `(int)(scale * x + .5)`: truncation toward zero.
  xs = np.trunc(_POLY_SCALE * xy[:, 0] + 0.5).astype(np.int64)
  ys = np.trunc(_POLY_SCALE * xy[:, 1] + 0.5).astype(np.int64)
  u, v = _trace_edges(xs, ys)
  moved = u[1:] != u[:-1]
  # A column is sampled where the traced boundary crosses its centre line.
  cross_u = np.minimum(u[1:], u[:-1])[moved]
  cross_v = np.minimum(v[1:], v[:-1])[moved]
  on_centre = (cross_u - 2) % _POLY_SCALE == 0
  col = (cross_u[on_centre] - 2) // _POLY_SCALE
  row = -((2 - cross_v[on_centre]) // _POLY_SCALE)  # ceil((v - 2) / scale)
  keep = (col >= 0) & (col <= width - 1)
  row = np.clip(row[keep], 0, height)
  # Each crossing flips the pixels from its position on; two at one position cancel.
  position, hits = np.unique(col[keep] * height + row, return_counts=True)
  edges = np.concatenate([[0], position[hits % 2 == 1], [height * width]])
  return _runs_to_mask(np.diff(edges), height, width)


def _check_polygon(coords, height: int, width: int):
  if not isinstance(coords, (list, tuple)):
    raise ValueError(f'a polygon must be a list of coordinates, got {type(coords).__name__}.')
  if len(coords) % 2:
    raise ValueError(f'polygon has an odd number of coordinates ({len(coords)}).')
  if not coords:
    return
  xy = np.asarray(coords, np.float64).reshape(-1, 2)
  if not np.isfinite(xy).all():
    raise ValueError('polygon has non-finite coordinates.')
  lo, hi = xy.min(axis=0), xy.max(axis=0)
  tol = POLY_TOLERANCE
  if lo[0] < -tol or lo[1] < -tol or hi[0] > width + tol or hi[1] > height + tol:
    raise ValueError(f'polygon spans x in [{lo[0]:g}, {hi[0]:g}], y in [{lo[1]:g}, '
                     f'{hi[1]:g}], outside the {width}x{height} image (tolerance {tol:g} px).')


def segmentation_to_mask(segmentation, height: int, width: int) -> np.ndarray:
  """A COCO `segmentation` (polygon list, RLE dict, or empty) -> bool `[height, width]`."""
  if isinstance(segmentation, dict):
    return rle_to_mask(segmentation, height, width)
  mask = np.zeros((height, width), bool)
  for coords in segmentation or []:
    _check_polygon(coords, height, width)
    if len(coords) >= 6:
      mask |= polygon_to_mask(coords, height, width)
  return mask


def union_mask(segmentations, height: int, width: int, origin: str) -> np.ndarray:
  """The union of several `segmentation`s -> bool `[height, width]`; all-False when
  there are none (a no-target expression). Errors name `origin` and the object index."""
  mask = np.zeros((height, width), bool)
  for i, segmentation in enumerate(segmentations):
    try:
      mask |= segmentation_to_mask(segmentation, height, width)
    except (ValueError, TypeError, KeyError) as e:
      raise ValueError(f'{origin}: annotation {i}: {e}') from None
  return mask
