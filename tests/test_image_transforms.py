import numpy as np
import pytest
from PIL import Image

from argenseg_jax import image_transforms as it


def test_normalize_tile_imagenet():
  tile = it.normalize_tile(Image.new('RGB', (100, 60), (255, 0, 128)))
  assert tile.shape == (448, 448, 3) and tile.dtype == np.float32
  want = (np.array([255, 0, 128], np.float32) / 255 - it.IMAGENET_MEAN) / it.IMAGENET_STD
  np.testing.assert_allclose(tile[200, 300], want, rtol=1e-6)
  with pytest.raises(ValueError, match='RGB'):
    it.normalize_tile(Image.new('L', (8, 8)))


def test_candidate_grids():
  grids = it.candidate_grids(1, 12)
  assert len(grids) == len(set(grids)) == sum(1 for i in range(1, 13) for j in range(1, 13)
                                              if i * j <= 12)
  assert [g[0] * g[1] for g in grids] == sorted(g[0] * g[1] for g in grids)
  with pytest.raises(ValueError, match='min_num'):
    it.candidate_grids(1, 0)


@pytest.mark.parametrize('size,want', [
    ((448, 448), (1, 1)),     # square: bigger square grids tie but the image is too small
    ((1000, 1000), (3, 3)),   # tie rule: 1e6 > 0.5*448^2*9, so 3x3 replaces 1x1 and 2x2
    ((896, 448), (2, 1)),
    ((448, 1400), (1, 3)),
    ((5000, 100), (12, 1)),   # extreme aspect: the widest grid within max_num
])
def test_closest_grid(size, want):
  assert it.closest_grid(*size, it.candidate_grids(1, 12)) == want


def test_dynamic_tiles_row_major_with_thumbnail():
  img = Image.new('RGB', (896, 896))
  img.paste((255, 0, 0), (448, 0, 896, 448))     # top-right quadrant red
  img.paste((0, 0, 255), (0, 448, 448, 896))     # bottom-left quadrant blue
  tiles = it.dynamic_tiles(img, max_num=4)
  assert len(tiles) == 5  # 2x2 + thumbnail
  assert tiles[1].getpixel((200, 200)) == (255, 0, 0)
  assert tiles[2].getpixel((200, 200)) == (0, 0, 255)
  assert len(it.dynamic_tiles(img, max_num=1)) == 1  # one tile: no thumbnail


def test_image_to_pixels():
  img = Image.new('RGB', (640, 480), (10, 20, 30))
  assert it.image_to_pixels(img).shape == (1, 448, 448, 3)
  assert it.image_to_pixels(img, dynamic=True, max_num=6).shape[0] > 1
  with pytest.raises(ValueError, match='max_num must be >= 1'):
    it.image_to_pixels(img, dynamic=True, max_num=0)
