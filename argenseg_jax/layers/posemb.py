"""2D sine-cosine position embeddings (as big_vision's `posemb_sincos_2d`), used to
initialise position tables of models trained from scratch.

The released checkpoints bring their own (learned) tables; these only replace the
random or zero initial values, so a model trained from scratch starts with image patches
and mask cells that know where they are.
"""

import jax.numpy as jnp
import numpy as np


def sincos_2d(ys: np.ndarray, xs: np.ndarray, dim: int, temperature: float = 10_000.0
              ) -> jnp.ndarray:
  """`[N, dim]` embeddings of the points `(ys[n], xs[n])` (any real coordinates):
  `[sin(x w), cos(x w), sin(y w), cos(y w)]` with `dim / 4` frequencies
  `w_k = temperature^(-k / (dim / 4))`."""
  if dim % 4:
    raise ValueError(f'sincos_2d needs a dim divisible by 4, got {dim}.')
  omega = 1.0 / temperature ** (np.arange(dim // 4) / (dim // 4))
  x = np.asarray(xs, np.float64)[:, None] * omega[None]
  y = np.asarray(ys, np.float64)[:, None] * omega[None]
  return jnp.asarray(np.concatenate([np.sin(x), np.cos(x), np.sin(y), np.cos(y)], axis=1),
                     jnp.float32)


def grid_points(side: int, units: float) -> tuple[np.ndarray, np.ndarray]:
  """Cell centres of a `side x side` grid in raster order, in coordinates where the
  whole image spans `units` (so grids of several sizes share one frame)."""
  centre = (np.arange(side) + 0.5) * units / side
  ys, xs = np.meshgrid(centre, centre, indexing='ij')
  return ys.reshape(-1), xs.reshape(-1)
