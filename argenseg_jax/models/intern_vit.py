"""InternViT (InternVL's vision encoder), channels-last.

Pixels `[B, H, W, 3]` (ImageNet-normalised) -> a 14x14 patch conv -> `[CLS, patches]`
plus a learned position embedding (bicubically resized when the patch grid differs from
the trained one) -> pre-norm transformer layers with layer scale. No final norm.
Covers InternViT-300M (LayerNorm, no qk norm) and InternViT-6B (`norm_type='rms_norm'`,
`qk_normalization=True`).
"""

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from argenseg_jax.layers import attention, logical, posemb, stack
from argenseg_jax.layers.conv import conv2d_patch
from argenseg_jax.layers.linear import RMSNorm, dense, norm
from argenseg_jax.layers.resize import bicubic_resize


class Embeddings(nnx.Module):
  """Patch conv + class token + position embedding: `[B, H, W, 3] -> [B, 1 + h*w, C]`."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    c = cfg.hidden_size
    self.patch_size = cfg.patch_size
    self.grid = cfg.image_size // cfg.patch_size
    init = nnx.initializers.normal(cfg.initializer_range)
    self.class_embedding = logical.param(init(rngs.params(), (1, 1, c)),
                                     (None, None, 'embed'))
    if cfg.get('posemb_init', 'normal') == 'sincos2d':  # training from scratch
      grid = posemb.sincos_2d(*posemb.grid_points(self.grid, self.grid), c)
      pos = jnp.concatenate([jnp.zeros((1, c)), grid])[None]
    else:  # the original's
      pos = init(rngs.params(), (1, 1 + self.grid ** 2, c))
    self.position_embedding = logical.param(pos, (None, None, 'embed'))
    self.patch_embedding = conv2d_patch(cfg.num_channels, c, cfg.patch_size, rngs)

  def __call__(self, pixels: jax.Array) -> jax.Array:
    patches = self.patch_embedding(pixels)  # [B, h, w, C]
    b, h, w, c = patches.shape
    pos = self.position_embedding[...]
    grid_pos = pos[:, 1:].reshape(1, self.grid, self.grid, c).astype(jnp.float32)
    grid_pos = bicubic_resize(grid_pos, (h, w)).reshape(1, h * w, c).astype(pos.dtype)
    cls = jnp.broadcast_to(self.class_embedding[...], (b, 1, c)).astype(patches.dtype)
    tokens = jnp.concatenate([cls, patches.reshape(b, h * w, c)], axis=1)
    return tokens + jnp.concatenate([pos[:, :1], grid_pos], axis=1).astype(patches.dtype)


class Attention(nnx.Module):
  """Multi-head self-attention, fused `qkv` ([q | k | v], each head-major), optional
  RMSNorm of q and k over all heads together (before the head split)."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    c = cfg.hidden_size
    self.num_heads = cfg.num_attention_heads
    self.implementation = cfg.get('attention', 'xla')
    attention.check(self.implementation)
    if c % self.num_heads:
      raise ValueError(f'hidden_size {c} is not divisible by num_attention_heads '
                       f'{self.num_heads}.')
    self.qkv = dense(c, 3 * c, ('embed', 'heads'), rngs, use_bias=cfg.qkv_bias)
    self.q_norm = RMSNorm(c, cfg.layer_norm_eps, 'heads', rngs) if cfg.qk_normalization else None
    self.k_norm = RMSNorm(c, cfg.layer_norm_eps, 'heads', rngs) if cfg.qk_normalization else None
    self.proj = dense(c, c, ('heads', 'embed'), rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    b, n, c = x.shape
    q, k, v = jnp.split(self.qkv(x), 3, axis=-1)
    if self.q_norm is not None:
      q, k = self.q_norm(q), self.k_norm(k)
    heads = lambda t: t.reshape(b, n, self.num_heads, c // self.num_heads)
    q, k, v = heads(q), heads(k), heads(v)
    out = attention.attend(q, k, v, implementation=self.implementation)
    return self.proj(out.reshape(b, n, c))


class Mlp(nnx.Module):
  """`fc2(gelu(fc1(x)))` with exact (erf) GELU."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    if cfg.hidden_act != 'gelu':
      raise ValueError(f"hidden_act {cfg.hidden_act!r} is not supported (InternViT: 'gelu').")
    self.fc1 = dense(cfg.hidden_size, cfg.intermediate_size, ('embed', 'mlp'), rngs)
    self.fc2 = dense(cfg.intermediate_size, cfg.hidden_size, ('mlp', 'embed'), rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.fc2(jax.nn.gelu(self.fc1(x), approximate=False))


def _drop_path(x: jax.Array, rate: jax.Array | float, rng: jax.Array | None) -> jax.Array:
  """Stochastic depth per sample (training only; identity when `rng` is None)."""
  if rng is None:
    return x
  keep = jax.random.bernoulli(rng, 1.0 - rate, (x.shape[0],) + (1,) * (x.ndim - 1))
  return jnp.where(keep, x / (1.0 - rate), 0.0)


class Layer(nnx.Module):
  """`x + ls1 * attn(norm1(x))`, then `x + ls2 * mlp(norm2(x))`."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    c = cfg.hidden_size
    self.norm1 = norm(cfg.norm_type, c, cfg.layer_norm_eps, 'embed', rngs)
    self.attn = Attention(cfg, rngs)
    self.ls1 = logical.param(cfg.initializer_factor * jnp.ones((c,)), ('embed',))
    self.norm2 = norm(cfg.norm_type, c, cfg.layer_norm_eps, 'embed', rngs)
    self.mlp = Mlp(cfg, rngs)
    self.ls2 = logical.param(cfg.initializer_factor * jnp.ones((c,)), ('embed',))

  def __call__(self, x: jax.Array, drop_path_rate: jax.Array | float = 0.0,
               rng: jax.Array | None = None) -> jax.Array:
    rngs = (None, None) if rng is None else tuple(jax.random.split(rng))
    x = x + _drop_path(self.attn(self.norm1(x)) * self.ls1[...], drop_path_rate, rngs[0])
    return x + _drop_path(self.mlp(self.norm2(x)) * self.ls2[...], drop_path_rate, rngs[1])


class Encoder(nnx.Module):
  """`layers`: one `stack.build` stack of `num_hidden_layers` layers; stochastic depth
  grows linearly from 0 at the first layer to `drop_path_rate` at the last."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    n = cfg.num_hidden_layers
    self.drop_path_rates = nnx.data(
        tuple(cfg.drop_path_rate * i / max(n - 1, 1) for i in range(n)))
    self.scan_layers = cfg.get('scan_layers', True)
    self.layers = stack.build(lambda r: Layer(cfg, r), n, rngs)

  def __call__(self, x: jax.Array, num_layers: int,
               drop_path_rng: jax.Array | None = None) -> jax.Array:
    """`x [B, N, C]` through the first `num_layers` layers."""
    rates = jnp.asarray(self.drop_path_rates[:num_layers], x.dtype)  # keeps a bf16 carry
    index = jnp.arange(num_layers)

    def body(layer, x, per_layer):
      rate, i = per_layer
      rng = None if drop_path_rng is None else jax.random.fold_in(drop_path_rng, i)
      return layer(x, rate, rng), None
    return stack.run(self.layers, body, x, (rates, index), count=num_layers,
                     scan=self.scan_layers)[0]


class InternViT(nnx.Module):
  """`pixels [B, H, W, 3] -> hidden states [B, 1 + (H/14)*(W/14), C]` (CLS first)."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    self.num_layers = cfg.num_hidden_layers
    self.embeddings = Embeddings(cfg, rngs)
    self.encoder = Encoder(cfg, rngs)

  def __call__(self, pixels: jax.Array, *, num_layers: int | None = None,
               drop_path_rng: jax.Array | None = None) -> jax.Array:
    """The hidden state after `num_layers` layers (default all; 0: the embeddings),
    i.e. the reference's `hidden_states[num_layers]`; `drop_path_rng` enables
    stochastic depth (training)."""
    n = self.num_layers if num_layers is None else num_layers
    x = self.embeddings(pixels)
    return x if n == 0 else self.encoder(x, n, drop_path_rng)
