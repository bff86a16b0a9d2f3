import numpy as np
import pytest
from PIL import Image

from argenseg_jax import image_io
from argenseg_jax.mask_transforms import mask_to_vae_input


def _save(tmp_path, img, name):
  path = tmp_path / name
  img.save(path)
  return path


def test_modes_convert_to_rgb(tmp_path):
  grey = Image.fromarray(np.array([[0, 128], [255, 7]], np.uint8), 'L')
  read = np.asarray(image_io.read_rgb(_save(tmp_path, grey, 'g.png')))
  np.testing.assert_array_equal(read[..., 1], [[0, 128], [255, 7]])
  rgba = Image.fromarray(np.full((2, 2, 4), [10, 20, 30, 0], np.uint8), 'RGBA')
  read = np.asarray(image_io.read_rgb(_save(tmp_path, rgba, 'a.png')))
  assert read[0, 0].tolist() == [10, 20, 30]
  palette = grey.convert('P')
  np.testing.assert_array_equal(np.asarray(image_io.read_rgb(_save(tmp_path, palette, 'p.png'))),
                                np.asarray(grey.convert('RGB')))
  cmyk = Image.new('CMYK', (2, 2), (0, 0, 0, 0))  # no ink = white
  assert np.asarray(image_io.read_rgb(_save(tmp_path, cmyk, 'c.jpg'))).min() > 245
  deep = Image.fromarray(np.array([[0, 65535], [32768, 257]], np.uint16))
  rgb16 = np.asarray(image_io.read_rgb(_save(tmp_path, deep, 'd.png')))
  assert rgb16.shape == (2, 2, 3)
  np.testing.assert_array_equal(rgb16[..., 0], [[0, 255], [128, 1]])  # rescaled, not clipped


def test_refuses_bad_files(tmp_path):
  with pytest.raises(FileNotFoundError):
    image_io.read_rgb(tmp_path / 'missing.png')
  (tmp_path / 'text.png').write_text('hello')
  with pytest.raises(image_io.ImageError, match='not a readable image'):
    image_io.read_rgb(tmp_path / 'text.png')
  full = _save(tmp_path, Image.new('RGB', (64, 64), (1, 2, 3)), 'full.png')
  (tmp_path / 'cut.png').write_bytes(full.read_bytes()[:60])
  with pytest.raises(image_io.ImageError, match='truncated'):
    image_io.read_rgb(tmp_path / 'cut.png')
  big = _save(tmp_path, Image.new('L', (400, 300)), 'big.png')
  with pytest.raises(image_io.ImageError, match='decompression bomb'):
    image_io.read_rgb(big, max_pixels=10_000)


def test_mask_transform_scales_binary_masks_and_resizes():
  mask = np.zeros((30, 50), np.uint8)
  mask[5:25, 10:40] = 1  # a 0/1 mask is scaled to 0/255 first
  x = mask_to_vae_input(mask, 256)
  assert x.shape == (256, 256, 3) and x.dtype == np.float32
  assert x.min() >= -1 and x.max() <= 1
  assert x[128, 128].tolist() == [1.0, 1.0, 1.0] and x[0, 0].tolist() == [-1.0, -1.0, -1.0]
  with pytest.raises(ValueError, match='mask must be'):
    mask_to_vae_input(np.zeros((4, 4, 2), np.uint8))


def test_grey_masks_resize_like_rgb_ones():
  """The single-channel shortcut gives exactly PIL's RGB bicubic result."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  mask = (np.random.default_rng(0).random((90, 70)) > 0.5).astype(np.uint8) * 255
  rgb = np.repeat(mask[..., None], 3, axis=-1)
  ref = Image.fromarray(rgb, 'RGB').resize((512, 512), Image.BICUBIC)
  ref = ref.resize((128, 128), Image.BICUBIC)
  np.testing.assert_array_equal(mask_to_vae_input(mask, 128),
                                np.asarray(ref, np.float32) / 255.0 * 2.0 - 1.0)


def test_generated_mask_to_the_image_size():
  """A 16-px generated mask stretched to a 32 x 16 image (size = (W, H)): True exactly on
  the white box; the threshold is on luma, so pure blue (luma 0.11) is background."""
  generated = np.zeros((16, 16, 3), np.uint8)
  generated[4:8, 2:10] = 255
  generated[12:, 12:] = (0, 0, 255)
  mask = image_io.mask_from_generated(generated, (32, 16))
  expected = np.zeros((16, 32), bool)
  expected[4:8, 4:20] = True
  assert mask.dtype == bool
  np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize('background', [(235, 235, 235), (20, 20, 30), (200, 40, 40)])
@pytest.mark.parametrize('colour', [(220, 40, 40), (40, 180, 60), (40, 80, 220), (230, 210, 40)])
def test_overlay_is_readable_whatever_the_colours(colour, background):
  yy, xx = np.mgrid[:32, :32]
  disc = (yy - 16) ** 2 + (xx - 16) ** 2 <= 64
  image = np.where(disc[..., None], colour, background).astype(np.uint8)
  out = image_io.overlay(Image.fromarray(image), disc).astype(np.float32)
  changed = np.linalg.norm(out - image, axis=-1)
  inner_edge = disc & ~np.pad(disc, 1)[2:, 1:-1] | disc & ~np.pad(disc, 1)[:-2, 1:-1]
  outer_ring = ~disc & (np.pad(disc, 1)[2:, 1:-1] | np.pad(disc, 1)[:-2, 1:-1])
  assert changed[inner_edge].min() > 150 and changed[outer_ring].min() > 150  # a clear line
  interior = disc & ~(np.pad(~disc, 2)[:-4, 2:-2] | np.pad(~disc, 2)[4:, 2:-2]
                      | np.pad(~disc, 2)[2:-2, :-4] | np.pad(~disc, 2)[2:-2, 4:])
  assert 20 < changed[interior].mean() < 0.5 * 255 * np.sqrt(3)  # tinted, still visible
  far = np.ones_like(disc)
  far[4:29, 4:29] = False
  assert changed[far].max() == 0
  assert np.array_equal(image_io.overlay(Image.fromarray(image), np.zeros_like(disc)), image)
