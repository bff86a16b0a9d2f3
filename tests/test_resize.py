import jax.numpy as jnp
import numpy as np
import pytest

from argenseg_jax.layers.resize import area_matrix, area_resize, bicubic_matrix, bicubic_resize


def test_area_bins_overlap_like_adaptive_avg_pool():
  # 5 -> 3: bins [0,2), [1,4), [3,5)  (floor(i*5/3), ceil((i+1)*5/3))
  x = np.arange(5, dtype=np.float32)
  np.testing.assert_allclose(area_matrix(5, 3) @ x, [0.5, 2.0, 3.5], rtol=1e-6)
  # 16 -> 13: bin 1 is [1, 3) (two cells), bin 0 is [0, 2).
  m = area_matrix(16, 13)
  np.testing.assert_allclose(m[0, :3], [0.5, 0.5, 0.0])
  np.testing.assert_allclose(m[1, :4], [0.0, 0.5, 0.5, 0.0])
  np.testing.assert_allclose(m.sum(axis=1), 1.0, rtol=1e-6)


def test_area_resize_is_separable_average_nhwc():
  x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
  y = area_resize(x, (2, 2))
  np.testing.assert_allclose(y, x.reshape(2, 2, 2, 2, 2, 3).mean(axis=(2, 4)), rtol=1e-6)
  assert area_resize(x, (4, 4)) is x


def test_bicubic_hand_computed_weights():
  # 2 -> 4, output 0: s = (0.5)*0.5 - 0.5 = -0.25, x0 = -1, t = 0.75, A = -0.75.
  a, t = -0.75, 0.75
  w = [((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
       ((a + 2) * t - (a + 3)) * t * t + 1,
       ((a + 2) * (1 - t) - (a + 3)) * (1 - t) ** 2 + 1,
       ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a]
  # taps -2, -1, 0, 1 clamp to 0, 0, 0, 1
  np.testing.assert_allclose(bicubic_matrix(2, 4)[0], [w[0] + w[1] + w[2], w[3]], rtol=1e-6)
  assert abs(w[3] - (-0.10546875)) < 1e-9  # the negative A=-0.75 lobe, by hand


def test_bicubic_constant_from_one_pixel_and_identity():
  x = jnp.full((1, 1, 1, 2), 3.0)
  np.testing.assert_allclose(bicubic_resize(x, (16, 16)), np.full((1, 16, 16, 2), 3.0), rtol=1e-6)
  np.testing.assert_allclose(bicubic_matrix(7, 7), np.eye(7), atol=1e-7)


@pytest.mark.torch
@pytest.mark.parametrize('size', [1, 2, 3, 5, 6, 10, 13])
def test_matches_torch_interpolate(size):
  torch = pytest.importorskip('torch')
  F = torch.nn.functional
  rng = np.random.default_rng(size)
  small = rng.normal(size=(2, 3, size, size)).astype(np.float32)
  big = rng.normal(size=(2, 3, 16, 16)).astype(np.float32)
  up_ref = F.interpolate(torch.from_numpy(small), size=(16, 16), mode='bicubic').numpy()
  down_ref = F.interpolate(torch.from_numpy(big), size=(size, size), mode='area').numpy()
  up = bicubic_resize(jnp.asarray(small.transpose(0, 2, 3, 1)), (16, 16))
  down = area_resize(jnp.asarray(big.transpose(0, 2, 3, 1)), (size, size))
  np.testing.assert_allclose(np.asarray(up).transpose(0, 3, 1, 2), up_ref, atol=2e-6)
  np.testing.assert_allclose(np.asarray(down).transpose(0, 3, 1, 2), down_ref, atol=2e-6)
