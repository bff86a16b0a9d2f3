"""PyTorch-exact image resizes as static interpolation matrices.

`F.interpolate(mode='area')` and `F.interpolate(mode='bicubic', align_corners=False)`
are reproduced exactly (up to float summation order); `jax.image.resize` differs from
both (its 'area' has no overlapping bins, its cubic kernel uses A = -0.5).

Both resizes are separable, so each is two small matmuls with matrices built in numpy
at trace time: `out = R_h @ x @ R_w^T` applied over NHWC arrays.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

_CUBIC_A = -0.75  # PyTorch's Keys cubic-convolution coefficient.


@functools.lru_cache(maxsize=None)
def area_matrix(in_size: int, out_size: int) -> np.ndarray:
  """Adaptive-average-pooling weights `[out, in]`: row i averages input cells
  `[floor(i*in/out), ceil((i+1)*in/out))` (bins overlap when `in % out != 0`)."""
  m = np.zeros((out_size, in_size), np.float64)
  for i in range(out_size):
    start = (i * in_size) // out_size
    end = -((-(i + 1) * in_size) // out_size)
    m[i, start:end] = 1.0 / (end - start)
  return m.astype(np.float32)


def _cubic_weights(t: float) -> tuple[float, float, float, float]:
  a = _CUBIC_A
  def near(x):  # |x| <= 1
    return ((a + 2) * x - (a + 3)) * x * x + 1
  def far(x):  # 1 < |x| < 2
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
  return far(t + 1), near(t), near(1 - t), far(2 - t)


@functools.lru_cache(maxsize=None)
def bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
  """PyTorch bicubic weights `[out, in]` (align_corners=False, A=-0.75, no antialias).

  Source coordinate `s = (dst + 0.5) * in/out - 0.5` (not clamped); the four taps
  `floor(s)-1 .. floor(s)+2` have their indices clamped to the border.
  """
  m = np.zeros((out_size, in_size), np.float64)
  scale = in_size / out_size
  for dst in range(out_size):
    src = (dst + 0.5) * scale - 0.5
    x0 = int(np.floor(src))
    weights = _cubic_weights(src - x0)
    for offset, w in zip(range(-1, 3), weights):
      m[dst, min(max(x0 + offset, 0), in_size - 1)] += w
  return m.astype(np.float32)


def _separable(x: jax.Array, rows: np.ndarray, cols: np.ndarray) -> jax.Array:
  """Applies `rows @ x @ cols^T` over the H and W axes of `[B, H, W, C]`."""
  hi = jax.lax.Precision.HIGHEST
  y = jnp.einsum('oh,bhwc->bowc', rows.astype(x.dtype), x, precision=hi)
  return jnp.einsum('pw,bowc->bopc', cols.astype(x.dtype), y, precision=hi)


def area_resize(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """`F.interpolate(x, size, mode='area')` for NHWC `x: [B, H, W, C]` -> `[B, h, w, C]`."""
  _, h_in, w_in, _ = x.shape
  if (h_in, w_in) == tuple(size):
    return x
  return _separable(x, area_matrix(h_in, size[0]), area_matrix(w_in, size[1]))


def bicubic_resize(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """`F.interpolate(x, size, mode='bicubic', align_corners=False)` for NHWC `x`."""
  _, h_in, w_in, _ = x.shape
  if (h_in, w_in) == tuple(size):
    return x
  return _separable(x, bicubic_matrix(h_in, size[0]), bicubic_matrix(w_in, size[1]))
