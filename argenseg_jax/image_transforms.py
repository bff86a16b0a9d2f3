"""InternVL image preprocessing, exactly as InternVL / ARGenSeg (numpy + PIL, host side).

- `normalize_tile`: PIL bicubic resize to 448x448 (no aspect preservation), then
  `(x / 255 - mean) / std` with the ImageNet statistics, float32, `[448, 448, 3]`.
- `dynamic_tiles`: InternVL's dynamic resolution: pick the tile grid (cols, rows) with
  `min_num <= cols*rows <= max_num` whose aspect ratio is closest to the image's (ties:
  the later, larger grid wins when the image area exceeds half the grid's area), resize
  to it, cut 448 tiles row-major, and append a thumbnail of the whole image when there
  is more than one tile.

All functions are deterministic and picklable, so they can run inside a grain `map`.
"""

import numpy as np
from PIL import Image

IMAGE_SIZE = 448
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def normalize_tile(img: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
  """RGB PIL image -> float32 `[size, size, 3]`, ImageNet-normalised."""
  if img.mode != 'RGB':
    raise ValueError(f'expected an RGB image, got mode {img.mode!r} (see image_io.to_rgb).')
  arr = np.asarray(img.resize((size, size), Image.BICUBIC), np.float32) / np.float32(255)
  return (arr - IMAGENET_MEAN) / IMAGENET_STD


def candidate_grids(min_num: int, max_num: int) -> list[tuple[int, int]]:
  """(cols, rows) grids with `min_num <= cols*rows <= max_num`, by tile count.

  Built as a set and stably sorted by tile count, like the original: the order among
  grids with the same count (which decides ties) is CPython's set order of int pairs.
  """
  if min_num < 1 or max_num < min_num:
    raise ValueError(f'need 1 <= min_num <= max_num, got min_num={min_num}, '
                     f'max_num={max_num}.')
  grids = {(i, j) for n in range(min_num, max_num + 1)
           for i in range(1, n + 1) for j in range(1, n + 1) if min_num <= i * j <= max_num}
  return sorted(grids, key=lambda g: g[0] * g[1])


def closest_grid(width: int, height: int, grids: list[tuple[int, int]],
                 size: int = IMAGE_SIZE) -> tuple[int, int]:
  """The grid whose aspect ratio is closest to `width / height` (original tie rule)."""
  aspect = width / height
  best, best_diff = (1, 1), float('inf')
  for cols, rows in grids:
    diff = abs(aspect - cols / rows)
    if diff < best_diff:
      best, best_diff = (cols, rows), diff
    elif diff == best_diff and width * height > 0.5 * size * size * cols * rows:
      best = (cols, rows)
  return best


def dynamic_tiles(img: Image.Image, *, min_num: int = 1, max_num: int = 12,
                  size: int = IMAGE_SIZE, use_thumbnail: bool = True) -> list[Image.Image]:
  """Splits an RGB image into 448 tiles (row-major) plus an optional thumbnail."""
  cols, rows = closest_grid(img.width, img.height, candidate_grids(min_num, max_num), size)
  resized = img.resize((cols * size, rows * size), Image.BICUBIC)
  tiles = [resized.crop((c * size, r * size, (c + 1) * size, (r + 1) * size))
           for r in range(rows) for c in range(cols)]
  if use_thumbnail and len(tiles) > 1:
    tiles.append(img.resize((size, size), Image.BICUBIC))
  return tiles


def image_to_pixels(img: Image.Image, *, dynamic: bool = False, max_num: int = 12,
                    use_thumbnail: bool = True, size: int = IMAGE_SIZE) -> np.ndarray:
  """RGB image -> `[T, size, size, 3]` float32 tiles (T = 1 unless `dynamic`).

  ARGenSeg uses one tile (`dynamic=False`); InternVL chat uses `dynamic=True`.
  """
  if max_num < 1:
    raise ValueError(f'max_num must be >= 1, got {max_num}.')
  tiles = (dynamic_tiles(img, max_num=max_num, size=size, use_thumbnail=use_thumbnail)
           if dynamic else [img])
  return np.stack([normalize_tile(t, size) for t in tiles])
