"""Token-level cross-entropy losses (float32, masked)."""

import jax
import jax.numpy as jnp


def masked_cross_entropy(logits: jax.Array, labels: jax.Array, select: jax.Array,
                         weights: jax.Array | None = None) -> jax.Array:
  """Mean CE of `logits [N, V]` at `labels [N]` over the rows where `select [N]`
  (0 when nothing is selected); with `weights [N]`, the weighted mean over them."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(logp, jnp.where(select, labels, 0)[:, None], axis=-1)[:, 0]
  if weights is None:
    return jnp.sum(jnp.where(select, nll, 0.0)) / jnp.maximum(jnp.sum(select), 1)
  weights = jnp.where(select, weights, 0.0)
  return jnp.sum(weights * jnp.where(select, nll, 0.0)) / jnp.maximum(jnp.sum(weights), 1e-9)


def shifted_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean next-token CE of `logits [B, L, V]`; labels `[B, L]`, -100 = ignored (HF)."""
  labels = labels[:, 1:].reshape(-1)
  return masked_cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels,
                              labels != -100)
