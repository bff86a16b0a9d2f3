"""Rotary position embedding, non-interleaved ("rotate half"), as in InternLM2 / LLaMA."""

import jax
import jax.numpy as jnp


def inv_frequencies(head_dim: int, theta: float) -> jax.Array:
  """`1 / theta^(2k / head_dim)` for k < head_dim / 2, float32."""
  return 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))


def apply_rope(x: jax.Array, positions: jax.Array, theta: float) -> jax.Array:
  """`x: [B, L, heads, head_dim]`, `positions: [B, L]` -> rotated `x` (same dtype).

  `x * cos + rotate_half(x) * sin` with angles `position * inv_freq` repeated over both
  halves of the head dimension.
  """
  freqs = positions.astype(jnp.float32)[..., None] * inv_frequencies(x.shape[-1], theta)
  angles = jnp.concatenate([freqs, freqs], axis=-1)[:, :, None, :]  # [B, L, 1, D]
  half = x.shape[-1] // 2
  rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
  out = x.astype(jnp.float32) * jnp.cos(angles) + rotated.astype(jnp.float32) * jnp.sin(angles)
  return out.astype(x.dtype)
