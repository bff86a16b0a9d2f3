"""Dense layers and normalisations with logical axis names on every parameter."""

import jax
import jax.numpy as jnp
from flax import nnx

from argenseg_jax.layers import logical


def dense(in_dim: int, out_dim: int, axes: tuple[str | None, str | None], rngs: nnx.Rngs,
          *, use_bias: bool = True, kernel_init=nnx.initializers.lecun_normal()) -> nnx.Linear:
  """`x @ W + b` with `W: [in, out]` (a torch Linear weight transposed); zero bias."""
  return nnx.Linear(
      in_dim, out_dim, use_bias=use_bias,
      kernel_init=logical.partitioned(kernel_init, axes),
      bias_init=logical.partitioned(nnx.initializers.zeros_init(), (axes[1],)),
      rngs=rngs)


def layer_norm(dim: int, eps: float, axis_name: str | None, rngs: nnx.Rngs) -> nnx.LayerNorm:
  """torch `LayerNorm(dim, eps)` with affine scale and bias; two-pass variance."""
  return nnx.LayerNorm(
      dim, epsilon=eps, use_fast_variance=False,
      scale_init=logical.partitioned(nnx.initializers.ones_init(), (axis_name,)),
      bias_init=logical.partitioned(nnx.initializers.zeros_init(), (axis_name,)),
      rngs=rngs)


class RMSNorm(nnx.Module):
  """`weight * (x / sqrt(mean(x^2) + eps))`, computed in float32 and cast back before
  the weight multiply (InternLM2's and InternViT's RMSNorm)."""

  def __init__(self, dim: int, eps: float, axis_name: str | None, rngs: nnx.Rngs):
    del rngs  # deterministic init: ones
    self.eps = eps
    self.weight = logical.param(jnp.ones((dim,), jnp.float32), (axis_name,))

  def __call__(self, x: jax.Array) -> jax.Array:
    x32 = x.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return self.weight[...] * normed.astype(x.dtype)


def norm(kind: str, dim: int, eps: float, axis_name: str | None, rngs: nnx.Rngs):
  """'layer_norm' (affine LayerNorm) or 'rms_norm' (weight-only RMSNorm)."""
  if kind == 'layer_norm':
    return layer_norm(dim, eps, axis_name, rngs)
  if kind == 'rms_norm':
    return RMSNorm(dim, eps, axis_name, rngs)
  raise ValueError(f"norm_type must be 'layer_norm' or 'rms_norm', got {kind!r}.")
