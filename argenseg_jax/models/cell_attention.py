"""A start for models trained from scratch: attention heads that look at the same place.

ARGenSeg draws the mask cell by cell, and the slot of cell (i, j) needs the image tokens
of that cell; from a random start the decoder takes tens of thousands of examples to
learn that position match (the visual loss stays at its image-blind level until then).
`cell_matching_init` sets the query and key weights of some heads so that, at step 0,
a mask slot already attends most to the image tokens and slots near its own cell: both
carry the same 2D sine-cosine table (`token_pos_init`, `slot_init`), and the heads read
its fastest frequencies for x and y, whose dot product `sum_k cos(w_k dx) + cos(w_k dy)`
peaks where the cells agree. Only head dimensions that RoPE barely turns over a prompt's
length are used, so the match does not depend on where the tokens sit in the sequence.
Everything stays trainable; the architecture and the loss are ARGenSeg's.
"""

import jax
import jax.numpy as jnp
import numpy as np


def slow_dims(head_dim: int, theta: float, max_angle: float, span: int) -> np.ndarray:
  """Rotate-half head dimensions whose RoPE frequency turns < `max_angle` over `span`
  (an even number of pairs, the slowest: a multiple of 4 dimensions)."""
  inv = 1.0 / theta ** (np.arange(0, head_dim, 2) / head_dim)
  pairs = np.flatnonzero(inv * span < max_angle)
  pairs = pairs[len(pairs) % 2:]
  return np.concatenate([pairs, pairs + head_dim // 2])


def fastest_components(width: int, count: int) -> np.ndarray:
  """Indices of `posemb.sincos_2d`'s `count / 4` fastest frequencies in its four blocks
  (sin x, cos x, sin y, cos y), `[count]`."""
  block = width // 4
  return np.concatenate([b * block + np.arange(count // 4) for b in range(4)])


def cell_matching_init(wq: jax.Array, wk: jax.Array, dims: np.ndarray, strength: float,
                       kv_heads: int = 1) -> tuple[jax.Array, jax.Array]:
  """New `wq [D, H, hd]`, `wk [D, KV, hd]`: on head dimensions `dims`, the first
  `kv_heads` key heads and their query heads read the fastest components of the
  sine-cosine table (times `strength`); other weights unchanged."""
  d, h, _ = wq.shape
  groups = h // wk.shape[1]
  read = np.zeros((d, len(dims)), np.float32)
  read[fastest_components(d, len(dims)), np.arange(len(dims))] = strength
  read = jnp.asarray(read)
  for g in range(kv_heads):
    wk = wk.at[:, g, dims].set(read)
    wq = wq.at[:, g * groups:(g + 1) * groups, dims].set(read[:, None])
  return wq, wk
