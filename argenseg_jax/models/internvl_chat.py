"""InternVL2.5 chat model: image path + InternLM2, joined at the `<IMG_CONTEXT>` tokens."""

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from argenseg_jax.models.image_embedder import ImageEmbedder
from argenseg_jax.models.internlm2 import InternLM2, KVCache


def replace_rows(embeds: jax.Array, where: jax.Array, rows: jax.Array,
                 row_valid: jax.Array | None = None) -> jax.Array:
  """Puts `rows` into `embeds` at the positions `where`, in order.

  embeds: `[B, L, D]`; where: `[B, L]` bool; rows: `[N, D]`; row_valid: `[N]` (rows
  marked False are skipped, like tiles with `image_flags == 0`). The k-th True position
  of `where` (row-major over B, L) receives the k-th valid row. The caller guarantees
  that the counts agree (checked on the host, where shapes are known).
  """
  if row_valid is not None:
    rows = rows[jnp.argsort(~row_valid, stable=True)]  # valid rows first, in order
  flat_where = where.reshape(-1)
  index = jnp.clip(jnp.cumsum(flat_where) - 1, 0, rows.shape[0] - 1)
  merged = jnp.where(flat_where[:, None], rows[index].astype(embeds.dtype),
                     embeds.reshape(-1, embeds.shape[-1]))
  return merged.reshape(embeds.shape)


class InternVLChat(nnx.Module):
  """`vision` (InternViT + mlp1) and `language_model` (InternLM2)."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    self.img_context_token_id = cfg.img_context_token_id
    self.vision = ImageEmbedder(cfg.image, rngs)
    self.language_model = InternLM2(cfg.llm, rngs)

  def embed_inputs(self, ids: jax.Array, pixels: jax.Array,
                   image_flags: jax.Array | None = None,
                   drop_path_rng: jax.Array | None = None) -> jax.Array:
    """Token embeddings `[B, L, D]` with the `<IMG_CONTEXT>` rows replaced, in order, by
    the image tokens of the tiles `pixels: [T, 448, 448, 3]` (flag 0 tiles dropped).
    `drop_path_rng` turns on the ViT's stochastic depth (training)."""
    image_tokens = self.vision.features(pixels, drop_path_rng).embeds  # [T, 256, D]
    t, n, d = image_tokens.shape
    valid = None if image_flags is None else jnp.repeat(image_flags.astype(bool), n)
    return replace_rows(self.language_model.embed(ids), ids == self.img_context_token_id,
                        image_tokens.reshape(t * n, d), valid)

  def __call__(self, embeds: jax.Array, positions: jax.Array, token_mask: jax.Array,
               cache: KVCache, active: jax.Array | None = None) -> tuple[jax.Array, KVCache]:
    """The LLM over input embeddings; see `InternLM2.__call__`."""
    return self.language_model(embeds, positions, token_mask, cache, active)
