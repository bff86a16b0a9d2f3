"""InternLM2 decoder (the LLM of InternVL2.5 / ARGenSeg) with a static-shape KV cache.

Pre-norm layers: `x + wo(attn(attention_norm(x)))`, `x + w2(silu(w1 h) * w3 h)`;
RMSNorm in float32; RoPE (rotate-half); grouped-query attention; no biases; untied
output head with float32 logits.

Attention masks are additive and built like the reference's eager path: causal and
padding terms of `finfo.min` each, summed (so a key both in the future and padded gets
-inf), plus -inf for cache slots not written yet. Real tokens thus see exactly the
unmasked keys; padded query rows reproduce the reference's (meaningless) values.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from argenseg_jax.layers import attention, logical, stack
from argenseg_jax.layers.linear import RMSNorm
from argenseg_jax.layers.rope import apply_rope
from argenseg_jax.sharding import constrain

# Logical axes of the activations the model constrains (`sharding.ACT_RULES`; the
# planner sizes the same arrays with the same names).
RESIDUAL = ('act_batch', 'act_len', 'act_embed')   # [B, L, D] between layers
QUERIES = ('act_batch', 'act_len', 'act_heads', 'act_head_dim')    # [B, L, H, hd]
KEYS = ('act_batch', 'act_len', 'act_kv_heads', 'act_head_dim')    # [B, L, KV, hd], also V
HIDDEN_MLP = ('act_batch', 'act_len', 'act_mlp')   # [B, L, F]
LOGITS = ('act_batch', 'act_len', 'act_vocab')     # [B, L, V]


class KVCache(NamedTuple):
  """Static-shape cache. `k`, `v`: `[layers, B, T, kv_heads, head_dim]` (keys after
  RoPE); `key_mask`: `[B, T]` True for written, non-padding slots; `length`: `[B]` slots
  written so far in each row. Every row has its own write position, so a row that sits
  out a call (`active` False) keeps its cache exactly as it was."""
  k: jax.Array
  v: jax.Array
  key_mask: jax.Array
  length: jax.Array

  @classmethod
  def empty(cls, layers: int, kv_heads: int, head_dim: int, batch: int, size: int,
            dtype=jnp.float32) -> 'KVCache':
    shape = (layers, batch, size, kv_heads, head_dim)
    return cls(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype),
               jnp.zeros((batch, size), bool), jnp.zeros((batch,), jnp.int32))


def write_rows(buffer: jax.Array, new: jax.Array, start: jax.Array) -> jax.Array:
  """`new [B, q, ...]` written into `buffer [B, T, ...]` at slots `start[b] ..
  start[b] + q - 1` of each row; a start of `T` (or more) writes nothing to that row.
  A chunk as long as the buffer replaces it whole: every row must then start at 0 (the
  one-shot forwards of training and parity), which is not checked."""
  b, q = new.shape[:2]
  if q == buffer.shape[1]:
    return new.astype(buffer.dtype)
  slots = start[:, None] + jnp.arange(q)[None]
  return buffer.at[jnp.arange(b)[:, None], slots].set(new.astype(buffer.dtype), mode='drop')


def attention_bias(cache: KVCache, q_len: int) -> jax.Array:
  """Additive bias `[B, 1, q_len, T]` for `q_len` new tokens written at `cache.length`."""
  size = cache.key_mask.shape[1]
  neg = jnp.finfo(jnp.float32).min
  slot = jnp.arange(size)[None, None, :]
  query = cache.length[:, None, None] + jnp.arange(q_len)[None, :, None]  # [B, q, 1]
  causal = jnp.where(slot > query, neg, 0.0)                              # [B, q, T]
  padding = jnp.where(cache.key_mask, 0.0, neg)[:, None, :]                # [B, 1, T]
  unwritten = jnp.where(slot >= cache.length[:, None, None] + q_len, -jnp.inf, 0.0)
  return ((causal + padding) + unwritten)[:, None]


# The vocabulary of the embedding table and head is padded to a multiple of this (zero
# rows that no token id reaches), so that it splits evenly over `tensor` (96653 -> 96768).
VOCAB_MULTIPLE = 128


def _param(init, key, shape, axes):
  return logical.param(init(key, shape), axes)


class Attention(nnx.Module):
  """GQA with per-head projections: `wq [D, H, hd]`, `wk`/`wv [D, KV, hd]`, `wo [H, hd, D]`."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    d, h, kv, hd = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    init = nnx.initializers.normal(cfg.initializer_range)
    self.theta = cfg.rope_theta
    self.implementation = cfg.get('attention', 'xla')
    attention.check(self.implementation)
    self.wq = _param(init, rngs.params(), (d, h, hd), ('embed', 'heads', 'head_dim'))
    self.wk = _param(init, rngs.params(), (d, kv, hd), ('embed', 'kv_heads', 'head_dim'))
    self.wv = _param(init, rngs.params(), (d, kv, hd), ('embed', 'kv_heads', 'head_dim'))
    self.wo = _param(init, rngs.params(), (h, hd, d), ('heads', 'head_dim', 'embed'))

  def __call__(self, x, positions, bias, k_cache, v_cache, start, key_mask):
    """`x: [B, q, D]` -> (`[B, q, D]`, updated `k_cache`, `v_cache` `[B, T, KV, hd]`);
    `bias [B, 1, q, T]` and `key_mask [B, T]` as `attention.attend` takes them."""
    q = constrain(jnp.einsum('bld,dhk->blhk', x, self.wq[...]), QUERIES)
    k = constrain(jnp.einsum('bld,dhk->blhk', x, self.wk[...]), KEYS)
    v = constrain(jnp.einsum('bld,dhk->blhk', x, self.wv[...]), KEYS)
    q, k = apply_rope(q, positions, self.theta), apply_rope(k, positions, self.theta)
    k_cache = write_rows(k_cache, k, start)
    v_cache = write_rows(v_cache, v, start)
    out = attention.attend(q, k_cache, v_cache, bias, implementation=self.implementation,
                           token_mask=key_mask)  # query head g*G + j sees kv head g
    return jnp.einsum('blhk,hkd->bld', out, self.wo[...]), k_cache, v_cache


class FeedForward(nnx.Module):
  """SwiGLU: `w2(silu(w1 x) * w3 x)`, no biases."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    d, f = cfg.hidden_size, cfg.intermediate_size
    init = nnx.initializers.normal(cfg.initializer_range)
    self.w1 = _param(init, rngs.params(), (d, f), ('embed', 'mlp'))
    self.w3 = _param(init, rngs.params(), (d, f), ('embed', 'mlp'))
    self.w2 = _param(init, rngs.params(), (f, d), ('mlp', 'embed'))

  def __call__(self, x: jax.Array) -> jax.Array:
    gated = jax.nn.silu(x @ self.w1[...]) * (x @ self.w3[...])
    return constrain(gated, HIDDEN_MLP) @ self.w2[...]


class DecoderLayer(nnx.Module):
  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    self.attention_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, 'embed', rngs)
    self.attention = Attention(cfg, rngs)
    self.ffn_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, 'embed', rngs)
    self.feed_forward = FeedForward(cfg, rngs)

  def __call__(self, x, positions, bias, k_cache, v_cache, start, key_mask):
    h, k_cache, v_cache = self.attention(self.attention_norm(x), positions, bias,
                                         k_cache, v_cache, start, key_mask)
    x = x + h
    return x + self.feed_forward(self.ffn_norm(x)), k_cache, v_cache


class InternLM2(nnx.Module):
  """`tok_embeddings`, `layers`, `norm`, `output` (named like the checkpoint; `layers`
  is one `stack.build` stack: parameters `[num_hidden_layers, ...]`)."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    check_config(cfg)
    self.max_positions = cfg.max_position_embeddings
    self.rope_scaling_factor = cfg.rope_scaling_factor
    self.remat = cfg.get('remat', False)  # recompute each layer in the backward pass
    self.scan_layers = cfg.get('scan_layers', True)
    self.cache_dims = (cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim)
    init = nnx.initializers.normal(cfg.initializer_range)
    self.vocab_size = cfg.vocab_size
    padded = padded_vocab_size(cfg.vocab_size)
    self.tok_embeddings = nnx.Embed(
        padded, cfg.hidden_size,
        embedding_init=logical.partitioned(_zero_rows_from(cfg.vocab_size, init),
                                           ('vocab', 'embed')), rngs=rngs)
    self.layers = stack.build(lambda r: DecoderLayer(cfg, r), cfg.num_hidden_layers, rngs)
    self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, 'embed', rngs)
    self.output = _param(_zero_cols_from(cfg.vocab_size, init), rngs.params(),
                         (cfg.hidden_size, padded), ('embed', 'vocab'))

  def empty_cache(self, batch: int, size: int, dtype=jnp.float32) -> KVCache:
    """A cache for `size` tokens per row. Beyond `max_position_embeddings` the original
    switches to dynamic-NTK RoPE, which is not implemented: refused here."""
    if size > self.max_positions and self.rope_scaling_factor != 1.0:
      raise NotImplementedError(
          f'a {size}-token context exceeds max_position_embeddings {self.max_positions}, '
          'where dynamic-NTK RoPE scaling would start; use at most that many tokens.')
    return KVCache.empty(*self.cache_dims, batch, size, dtype)

  def embed(self, ids: jax.Array) -> jax.Array:
    """Token ids `[B, L]` -> embeddings `[B, L, D]` in the table's dtype (`nnx.Embed`
    would cast to the dtype it was built with, keeping a bf16 run in f32)."""
    return jnp.take(self.tok_embeddings.embedding[...], ids, axis=0)

  def __call__(self, x: jax.Array, positions: jax.Array, token_mask: jax.Array,
               cache: KVCache, active: jax.Array | None = None) -> tuple[jax.Array, KVCache]:
    """Runs `q` new tokens through the decoder, writing their keys/values into `cache`.

    x: `[B, q, D]` input embeddings; positions: `[B, q]` RoPE positions; token_mask:
    `[B, q]` False for padding; active: `[B]` rows that take part (default: all). Returns
    the final-norm hidden states `[B, q, D]` and the cache with `q` more slots written
    in each active row; inactive rows' caches are unchanged (their outputs are
    meaningless). Attention is causal inside the chunk and full over the earlier slots.
    """
    q_len = x.shape[1]
    start = cache.length
    if active is not None:  # an out-of-range start writes nothing
      start = jnp.where(active, start, cache.key_mask.shape[1])
    key_mask = write_rows(cache.key_mask, token_mask, start)
    bias = attention_bias(cache._replace(key_mask=key_mask), q_len)

    def body(layer, x, kv):
      x = constrain(x, RESIDUAL)  # block boundary: batch over data+fsdp, width over tensor
      x, k, v = layer(x, positions, bias, *kv, start, key_mask)
      return x, (k, v)
    x, (k, v) = stack.run(self.layers, body, x, (cache.k, cache.v), scan=self.scan_layers,
                          remat=self.remat)
    length = cache.length + (q_len if active is None else jnp.where(active, q_len, 0))
    return self.norm(x), KVCache(k, v, key_mask, length)

  def logits(self, hidden: jax.Array, first: int = 0) -> jax.Array:
    """`[B, L, D]` -> float32 logits `[B, L, V - first]` of the vocabulary rows from
    `first` on (negative counts from the end: -4096 = the visual codes only); the
    padding rows of the head (`padded_vocab_size`) are left out."""
    start = first % self.vocab_size if first < 0 else first
    logits = jnp.einsum('bld,dv->blv', hidden, self.output[:, start:self.vocab_size])
    return constrain(logits, LOGITS).astype(jnp.float32)

  def padded_logits(self, hidden: jax.Array) -> jax.Array:
    """`[B, L, D]` -> float32 logits `[B, L, V_padded]` over the whole padded head (even
    shards over `tensor`), the padding columns at -inf."""
    logits = constrain(jnp.einsum('bld,dv->blv', hidden, self.output[...]), LOGITS)
    return mask_padding(logits.astype(jnp.float32), self.vocab_size)


def padded_vocab_size(vocab_size: int) -> int:
  """The vocabulary rounded up to a multiple of `VOCAB_MULTIPLE`."""
  return -(-vocab_size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE


def mask_padding(logits: jax.Array, vocab_size: int) -> jax.Array:
  """`[..., V_padded]` with the columns from `vocab_size` on set to -inf."""
  real = jnp.arange(logits.shape[-1]) < vocab_size
  return jnp.where(real, logits, -jnp.inf)


def _zero_rows_from(n: int, init):
  """`init` with rows `n` and on of the result zero (the vocabulary padding)."""
  def padded(key, shape, dtype=jnp.float32):
    return init(key, shape, dtype).at[n:].set(0)
  return padded


def _zero_cols_from(n: int, init):
  def padded(key, shape, dtype=jnp.float32):
    return init(key, shape, dtype).at[:, n:].set(0)
  return padded


def check_config(cfg: ml_collections.ConfigDict) -> None:
  if cfg.num_attention_heads % cfg.num_key_value_heads:
    raise ValueError(f'num_attention_heads {cfg.num_attention_heads} is not a multiple of '
                     f'num_key_value_heads {cfg.num_key_value_heads}.')
  if cfg.head_dim * cfg.num_attention_heads != cfg.hidden_size:
    raise ValueError(f'head_dim {cfg.head_dim} x heads {cfg.num_attention_heads} != '
                     f'hidden_size {cfg.hidden_size}.')
  if cfg.get('bias', False):
    raise ValueError('InternLM2 with biases (bias=True) is not supported.')

