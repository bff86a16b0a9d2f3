"""InternVL's pixel shuffle and `mlp1` projector: ViT tokens -> LLM-width image tokens."""

import jax
from flax import nnx

from argenseg_jax.layers.linear import dense, layer_norm


def pixel_shuffle(x: jax.Array, downsample_ratio: float = 0.5,
                  ps_version: str = 'v2') -> jax.Array:
  """`[B, h, w, C] -> [B, h/2, w/2, 4C]` (InternVL `pixel_shuffle`, ps_version 'v2').

  Output cell (i, j) is `concat(x[2i, 2j], x[2i, 2j+1], x[2i+1, 2j], x[2i+1, 2j+1])`,
  i.e. channel `(2*dr + dc) * C + c`.
  """
  if downsample_ratio != 0.5 or ps_version != 'v2':
    raise ValueError('only downsample_ratio 0.5 with ps_version v2 (InternVL2+) is '
                     f'supported, got {downsample_ratio} / {ps_version!r}.')
  b, h, w, c = x.shape
  if h % 2 or w % 2:
    raise ValueError(f'pixel shuffle needs an even token grid, got {h}x{w}.')
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


class Projector(nnx.Module):
  """`mlp1`: LayerNorm(in, eps 1e-5) -> Linear -> exact GELU -> Linear.

  `norm`, `fc1`, `fc2` are the checkpoint's `mlp1.0`, `mlp1.1`, `mlp1.3`.
  """

  def __init__(self, in_dim: int, out_dim: int, rngs: nnx.Rngs):
    self.norm = layer_norm(in_dim, 1e-5, 'mlp', rngs)
    self.fc1 = dense(in_dim, out_dim, ('mlp', 'embed'), rngs)
    self.fc2 = dense(out_dim, out_dim, ('embed', 'mlp'), rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.fc2(jax.nn.gelu(self.fc1(self.norm(x)), approximate=False))


def tokens_to_grid(tokens: jax.Array) -> jax.Array:
  """Patch tokens `[B, h*w, C]` (row-major, square grid) -> `[B, h, w, C]`."""
  b, n, c = tokens.shape
  side = int(round(n ** 0.5))
  if side * side != n:
    raise ValueError(f'{n} patch tokens do not form a square grid.')
  return tokens.reshape(b, side, side, c)


def flatten_grid(x: jax.Array) -> jax.Array:
  """`[B, h, w, C] -> [B, h*w, C]` row-major."""
  return x.reshape(x.shape[0], -1, x.shape[-1])
