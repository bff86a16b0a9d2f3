"""Token-level cross-entropy losses (float32, masked)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp


def masked_mean(values: jax.Array, select: jax.Array,
                weights: jax.Array | None = None) -> jax.Array:
  """Mean of `values` over the entries where `select` (0 when nothing is selected); with
  `weights`, the weighted mean over them. All of one shape."""
  values = jnp.where(select, values, 0.0)
  if weights is None:
    return jnp.sum(values) / jnp.maximum(jnp.sum(select), 1)
  weights = jnp.where(select, weights, 0.0)
  return jnp.sum(weights * values) / jnp.maximum(jnp.sum(weights), 1e-9)


def token_nll(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """`-log softmax(logits)[label]`, float32: logits `[..., V]`, labels `[...]` (valid
  ids; mask the others afterwards)."""
  logits = logits.astype(jnp.float32)
  picked = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
  return jax.nn.logsumexp(logits, axis=-1) - picked


def chunked_nll(logits_of: Callable[[jax.Array], jax.Array], hidden: jax.Array,
                labels: jax.Array, chunk: int) -> jax.Array:
  """`token_nll(logits_of(hidden), labels)` `[B, L]` computed `chunk` positions at a
  time, each chunk's logits recomputed in the backward pass: only one chunk's
  `[B, chunk, V]` logits are ever held (not the whole `[B, L, V]`). hidden `[B, L, D]`."""
  b, length, d = hidden.shape
  if length <= chunk:
    return token_nll(logits_of(hidden), labels)
  pad = -length % chunk
  hidden = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0))).reshape(b, -1, chunk, d)
  labels = jnp.pad(labels, ((0, 0), (0, pad))).reshape(b, -1, chunk)

  @jax.checkpoint
  def one(h_y):
    h, y = h_y
    return token_nll(logits_of(h), y)
  nll = jax.lax.map(one, (jnp.swapaxes(hidden, 0, 1), jnp.swapaxes(labels, 0, 1)))
  return jnp.swapaxes(nll, 0, 1).reshape(b, -1)[:, :length]


def masked_cross_entropy(logits: jax.Array, labels: jax.Array, select: jax.Array,
                         weights: jax.Array | None = None) -> jax.Array:
  """Mean CE of `logits [N, V]` at `labels [N]` over the rows where `select [N]`
  (0 when nothing is selected); with `weights [N]`, the weighted mean over them."""
  return masked_mean(token_nll(logits, jnp.where(select, labels, 0)), select, weights)


def shifted_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean next-token CE of `logits [B, L, V]`; labels `[B, L]`, -100 = ignored (HF)."""
  labels = labels[:, 1:].reshape(-1)
  return masked_cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels,
                              labels != -100)
