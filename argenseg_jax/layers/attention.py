"""Scaled dot-product attention through `jax.nn.dot_product_attention`, kernel by config.

  'xla'    XLA's attention: scores `[B, H, q, T]` in memory, float32 softmax; any device,
           bit-for-bit the reference's masking (the additive bias as given). Default.
  'cudnn'  cuDNN's fused (flash) attention on NVIDIA GPUs (bf16/fp16: float32 inputs go
           through bf16), the scores never in memory; the mask is the bias's allowed
           keys (`bias == 0`).
  'splash' Pallas splash attention on TPU (`jax.experimental.pallas.ops.tpu`), for a
           whole sequence from an empty cache (training and the parity forward):
           causal, with padding as a second segment; shorter chunks (cached decoding)
           run 'xla'. Lengths must be multiples of 128; off TPU the kernel is
           interpreted (correct and slow: for tests).
All three give every real (non-padding) query the same keys; rows of padding queries
attend to nothing meaningful in any of them.
"""

import functools

import jax
import jax.numpy as jnp

from argenseg_jax import sharding

IMPLEMENTATIONS = ('xla', 'cudnn', 'splash')
FUSED = ('cudnn', 'splash')  # the kernels that never hold the [B, H, q, T] scores
SPLASH_BLOCK = 128  # splash's default query and key block


def check(implementation: str) -> None:
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(f'attention must be one of {", ".join(IMPLEMENTATIONS)}, got '
                     f'{implementation!r}.')


def attend(q: jax.Array, k: jax.Array, v: jax.Array, bias: jax.Array | None = None, *,
           implementation: str = 'xla', token_mask: jax.Array | None = None) -> jax.Array:
  """`q [B, q, H, hd]`, `k`, `v` `[B, T, KV, hd]` (H a multiple of KV) -> `[B, q, H, hd]`.

  bias: additive `[B, 1, q, T]` (0 where a key is seen, very negative or -inf where not)
  or None (every key). token_mask `[B, T]` (True: real token) is what 'splash' needs
  for a whole causal sequence (q == T), with `bias` its causal-and-padding bias."""
  check(implementation)
  if implementation == 'splash' and token_mask is not None and q.shape[1] == k.shape[1]:
    if q.shape[1] % SPLASH_BLOCK:
      raise ValueError(f'splash attention needs sequences of a multiple of {SPLASH_BLOCK} '
                       f'tokens, got {q.shape[1]}: choose length buckets that are, or '
                       "attention='xla'.")
    return _splash(q, k, v, token_mask)
  if implementation == 'cudnn':  # half precision only: float32 runs through bfloat16
    mask = None if bias is None else bias == 0
    half = (lambda t: t) if q.dtype in (jnp.bfloat16, jnp.float16) else (
        lambda t: t.astype(jnp.bfloat16))
    out = jax.nn.dot_product_attention(half(q), half(k), half(v), mask=mask,
                                       implementation='cudnn')
    return out.astype(q.dtype)
  return jax.nn.dot_product_attention(q, k, v, bias=bias, implementation='xla')


def _splash(q: jax.Array, k: jax.Array, v: jax.Array, token_mask: jax.Array) -> jax.Array:
  """Causal splash attention; padding tokens form segment 0, real tokens segment 1. Under
  a mesh, each device runs the kernel on its batch rows and heads (`shard_map`, the
  shards of `sharding.ACT_RULES`)."""
  groups = q.shape[2] // k.shape[2]
  k, v = (jnp.repeat(t, groups, axis=2) for t in (k, v))  # query head g*G + j -> kv head g
  heads_first = functools.partial(jnp.swapaxes, axis1=1, axis2=2)  # [B, H, L, hd]
  args = (heads_first(q * q.shape[-1] ** -0.5), heads_first(k), heads_first(v),
          token_mask.astype(jnp.int32))
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return heads_first(_splash_local(*args)).astype(q.dtype)
  heads = sharding.mesh_spec(('act_batch', 'act_heads', None, None), args[0].shape, mesh,
                             sharding.ACT_RULES)
  rows = jax.sharding.PartitionSpec(heads[0], None)
  out = jax.shard_map(_splash_local, mesh=mesh, in_specs=(heads, heads, heads, rows),
                      out_specs=heads, check_vma=False)(*args)
  return heads_first(out).astype(q.dtype)


def _splash_local(q: jax.Array, k: jax.Array, v: jax.Array, segments: jax.Array) -> jax.Array:
  """`[B, H, L, hd]` each (k, v with H heads), segments `[B, L]` -> `[B, H, L, hd]`."""
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as kernel  # pylint: disable=import-outside-toplevel
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as masks
  _, h, length, _ = q.shape
  mask = masks.MultiHeadMask([masks.CausalMask((length, length))] * h)
  splash = kernel.make_splash_mha(mask, head_shards=1, q_seq_shards=1,
                                  interpret=jax.default_backend() != 'tpu')
  return jax.vmap(splash)(q, k, v, kernel.SegmentIds(q=segments, kv=segments))
