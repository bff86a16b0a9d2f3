"""VAR's multi-scale residual VQ-VAE (the frozen mask tokenizer of ARGenSeg), NHWC.

Encoder/Decoder follow latent-diffusion's vq-f16 layout as used by VAR; the quantizer
is VAR's `VectorQuantizer2` with `PhiPartiallyShared` residual convs. All arrays are
NHWC: images `[B, H, W, 3]` in [-1, 1], latents `[B, h, w, Cvae]` with `h = H / 16`,
codes per scale `[B, pn*pn]` (row-major over the pn x pn grid).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from argenseg_jax.layers import logical
from argenseg_jax.layers.conv import conv2d, group_norm
from argenseg_jax.layers.resize import area_resize, bicubic_resize


def phi_index_per_scale(num_scales: int, num_phi: int) -> tuple[int, ...]:
  """Which shared Phi conv each scale uses (`PhiPartiallyShared.__getitem__`).

  Computed in float64 exactly like the original; its exact ties (si = 2 and 7 of 10)
  resolve to `[0, 0, 1, 1, 1, 2, 2, 3, 3, 3]` for 10 scales and 4 convs.
  """
  if num_phi == 4:
    ticks = np.linspace(1 / 3 / num_phi, 1 - 1 / 3 / num_phi, num_phi)
  else:
    ticks = np.linspace(1 / 2 / num_phi, 1 - 1 / 2 / num_phi, num_phi)
  return tuple(int(np.argmin(np.abs(ticks - si / (num_scales - 1))))
               for si in range(num_scales))


class ResnetBlock(nnx.Module):
  """`x -> shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))`."""

  def __init__(self, in_ch: int, out_ch: int, rngs: nnx.Rngs, groups: int = 32):
    self.norm1 = group_norm(in_ch, rngs, groups=groups)
    self.conv1 = conv2d(in_ch, out_ch, 3, rngs)
    self.norm2 = group_norm(out_ch, rngs, groups=groups)
    self.conv2 = conv2d(out_ch, out_ch, 3, rngs)
    self.nin_shortcut = conv2d(in_ch, out_ch, 1, rngs) if in_ch != out_ch else None

  def __call__(self, x: jax.Array) -> jax.Array:
    h = self.conv1(nnx.silu(self.norm1(x)))
    h = self.conv2(nnx.silu(self.norm2(h)))
    return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nnx.Module):
  """Single-head self-attention over the `h*w` positions, 1x1-conv q/k/v."""

  def __init__(self, ch: int, rngs: nnx.Rngs, groups: int = 32):
    self.norm = group_norm(ch, rngs, groups=groups)
    self.qkv = conv2d(ch, 3 * ch, 1, rngs)
    self.proj_out = conv2d(ch, ch, 1, rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    q, k, v = jnp.split(self.qkv(self.norm(x)).reshape(b, h * w, 3 * c), 3, axis=-1)
    attn = jax.nn.softmax(jnp.einsum('bqc,bkc->bqk', q, k) * c ** -0.5, axis=-1)
    out = jnp.einsum('bqk,bkc->bqc', attn, v).reshape(b, h, w, c)
    return x + self.proj_out(out)


class Downsample(nnx.Module):
  """Zero-pad right/bottom by one, then a stride-2 3x3 conv: `[B,H,W,C] -> [B,H/2,W/2,C]`."""

  def __init__(self, ch: int, rngs: nnx.Rngs):
    self.conv = conv2d(ch, ch, 3, rngs, stride=2, padding=((0, 1), (0, 1)))

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.conv(x)


class Upsample(nnx.Module):
  """Nearest-neighbour x2, then a 3x3 conv: `[B,H,W,C] -> [B,2H,2W,C]`."""

  def __init__(self, ch: int, rngs: nnx.Rngs):
    self.conv = conv2d(ch, ch, 3, rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.conv(jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2))


class Level(nnx.Module):
  """One resolution level: res blocks, each optionally followed by attention, then an
  optional resample (`Downsample` in the encoder, `Upsample` in the decoder)."""

  def __init__(self, channels: Sequence[int], with_attn: bool, resample, rngs: nnx.Rngs,
               groups: int = 32):
    self.block = nnx.List([ResnetBlock(i, o, rngs, groups)
                           for i, o in zip(channels[:-1], channels[1:])])
    self.attn = nnx.List([AttnBlock(o, rngs, groups) for o in channels[1:]]
                         if with_attn else [])
    self.resample_name = None if resample is None else resample.__name__.lower()
    if resample is not None:
      setattr(self, self.resample_name, resample(channels[-1], rngs))

  def __call__(self, h: jax.Array) -> jax.Array:
    for i, block in enumerate(self.block):
      h = block(h)
      if self.attn:
        h = self.attn[i](h)
    if self.resample_name is not None:
      h = getattr(self, self.resample_name)(h)
    return h


class Mid(nnx.Module):
  """ResnetBlock -> AttnBlock -> ResnetBlock at the lowest resolution."""

  def __init__(self, ch: int, rngs: nnx.Rngs, groups: int = 32):
    self.block_1 = ResnetBlock(ch, ch, rngs, groups)
    self.attn_1 = AttnBlock(ch, rngs, groups)
    self.block_2 = ResnetBlock(ch, ch, rngs, groups)

  def __call__(self, h: jax.Array) -> jax.Array:
    return self.block_2(self.attn_1(self.block_1(h)))


class Encoder(nnx.Module):
  """`[B, H, W, 3] -> [B, H/16, W/16, z]` (for 5 levels)."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    ch, mult, n, groups = cfg.ch, tuple(cfg.ch_mult), cfg.num_res_blocks, norm_groups(cfg)
    self.conv_in = conv2d(3, ch, 3, rngs)
    ins = (1,) + mult
    last = len(mult) - 1
    self.down = nnx.List([
        Level([ch * ins[i]] + [ch * mult[i]] * n, i == last,
              None if i == last else Downsample, rngs, groups)
        for i in range(len(mult))])
    top = ch * mult[-1]
    self.mid = Mid(top, rngs, groups)
    self.norm_out = group_norm(top, rngs, groups=groups)
    self.conv_out = conv2d(top, cfg.z_channels, 3, rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    h = self.conv_in(x)
    for level in self.down:
      h = level(h)
    return self.conv_out(nnx.silu(self.norm_out(self.mid(h))))


class Decoder(nnx.Module):
  """`[B, h, w, z] -> [B, 16h, 16w, 3]` (unclamped)."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    ch, mult, n, groups = cfg.ch, tuple(cfg.ch_mult), cfg.num_res_blocks, norm_groups(cfg)
    last = len(mult) - 1
    top = ch * mult[-1]
    self.conv_in = conv2d(cfg.z_channels, top, 3, rngs)
    self.mid = Mid(top, rngs, groups)
    # up[i] runs at level i; the forward pass goes from the last level to level 0.
    block_in = [ch * mult[i + 1] if i < last else top for i in range(len(mult))]
    self.up = nnx.List([
        Level([block_in[i]] + [ch * mult[i]] * (n + 1), i == last,
              None if i == 0 else Upsample, rngs, groups)
        for i in range(len(mult))])
    self.norm_out = group_norm(ch * mult[0], rngs, groups=groups)
    self.conv_out = conv2d(ch * mult[0], 3, 3, rngs)

  def __call__(self, z: jax.Array) -> jax.Array:
    h = self.mid(self.conv_in(z))
    for level in reversed(self.up):
      h = level(h)
    return self.conv_out(nnx.silu(self.norm_out(h)))


class MultiScaleQuantizer(nnx.Module):
  """Residual quantizer over the scales `patch_nums` with K partially shared Phi convs.

  `Phi_k(h) = (1 - r) * h + r * conv_k(h)` with `r = quant_resi`; scale `si` uses
  `phi[phi_index[si]]`, applied after bicubic upsampling to the latent size.
  """

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    if cfg.share_quant_resi < 2:
      raise ValueError('Only partially shared Phi convs (share_quant_resi >= 2, VAR uses '
                       f'4) are implemented; got share_quant_resi={cfg.share_quant_resi}.')
    self.patch_nums = tuple(cfg.patch_nums)
    self.resi_ratio = abs(cfg.quant_resi)
    self.beta = cfg.beta
    self.phi_index = phi_index_per_scale(len(self.patch_nums), cfg.share_quant_resi)
    self.embedding = nnx.Embed(
        cfg.vocab_size, cfg.z_channels,
        embedding_init=logical.partitioned(nnx.initializers.normal(1.0),
                                             ('vocab', None)),
        rngs=rngs)
    self.phi = nnx.List([conv2d(cfg.z_channels, cfg.z_channels, 3, rngs)
                         for _ in range(cfg.share_quant_resi)])

  @property
  def latent_hw(self) -> int:
    return self.patch_nums[-1]

  def nearest_code(self, z: jax.Array) -> jax.Array:
    """L2-nearest codebook index `[...]` for `z: [..., C]` (first index on ties)."""
    e = self.embedding.embedding[...]
    flat = z.reshape(-1, z.shape[-1])
    d = (jnp.sum(flat ** 2, axis=1, keepdims=True) + jnp.sum(e ** 2, axis=1)
         - 2 * jnp.dot(flat, e.T, precision=jax.lax.Precision.HIGHEST))
    return jnp.argmin(d, axis=1).astype(jnp.int32).reshape(z.shape[:-1])

  def code_embeddings(self, si: int, codes: jax.Array) -> jax.Array:
    """Codes `[B, pn*pn]` of scale `si` -> token map `[B, pn, pn, C]`."""
    pn = self.patch_nums[si]
    return self.embedding(codes).reshape(codes.shape[0], pn, pn, -1)

  def fhat_increment(self, si: int, h: jax.Array) -> jax.Array:
    """`Phi(bicubic(h -> latent))` for the scale-`si` token map `h: [B, pn, pn, C]`."""
    hw = self.latent_hw
    h = bicubic_resize(h.astype(jnp.float32), (hw, hw))
    phi = self.phi[self.phi_index[si]]
    return h * (1 - self.resi_ratio) + phi(h) * self.resi_ratio

  def features_to_codes(self, f: jax.Array) -> tuple[list[jax.Array], list[jax.Array]]:
    """`f: [B, h, w, C]` -> (codes per scale `[B, pn*pn]`, cumulative f_hat per scale)."""
    b = f.shape[0]
    f_rest, f_hat = f, jnp.zeros_like(f)
    codes, f_hats = [], []
    for si, pn in enumerate(self.patch_nums):
      idx = self.nearest_code(area_resize(f_rest, (pn, pn))).reshape(b, pn * pn)
      h = self.fhat_increment(si, self.code_embeddings(si, idx))
      f_hat, f_rest = f_hat + h, f_rest - h
      codes.append(idx)
      f_hats.append(f_hat)
    return codes, f_hats

  def codes_to_fhats(self, codes: Sequence[jax.Array]) -> list[jax.Array]:
    """Cumulative `f_hat` after each scale, each `[B, h, w, C]`."""
    f_hat, out = 0.0, []
    for si, idx in enumerate(codes):
      f_hat = f_hat + self.fhat_increment(si, self.code_embeddings(si, idx))
      out.append(f_hat)
    return out

  def codes_to_var_input(self, codes: Sequence[jax.Array]) -> jax.Array:
    """Teacher-forcing inputs for slots 1..L-1: `[B, L - 1, C]` (VAR's `idxBl_to_var_input`)."""
    f_hats = self.codes_to_fhats(codes[:-1])
    b, c = f_hats[0].shape[0], f_hats[0].shape[-1]
    return jnp.concatenate(
        [area_resize(fh, (pn, pn)).reshape(b, pn * pn, c)
         for fh, pn in zip(f_hats, self.patch_nums[1:])], axis=1)

  def next_autoregressive_input(self, si: int, f_hat: jax.Array,
                                h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One sampler step: add scale `si`'s token map `h: [B, pn, pn, C]` to `f_hat`.

    Returns `(f_hat, next_map)` with `next_map: [B, pn', pn', C]` the area-downsampled
    `f_hat` at the next scale, or `(f_hat, f_hat)` after the last scale.
    """
    f_hat = f_hat + self.fhat_increment(si, h)
    if si == len(self.patch_nums) - 1:
      return f_hat, f_hat
    pn = self.patch_nums[si + 1]
    return f_hat, area_resize(f_hat, (pn, pn))


class VQVAE(nnx.Module):
  """VAR VQ-VAE: `encoder -> quant_conv -> quantize` and `post_quant_conv -> decoder`."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    check_config(cfg)
    self.encoder = Encoder(cfg, rngs)
    self.decoder = Decoder(cfg, rngs)
    self.quantize = MultiScaleQuantizer(cfg, rngs)
    self.quant_conv = conv2d(cfg.z_channels, cfg.z_channels, cfg.quant_conv_ks, rngs)
    self.post_quant_conv = conv2d(cfg.z_channels, cfg.z_channels, cfg.quant_conv_ks, rngs)

  @property
  def patch_nums(self) -> tuple[int, ...]:
    return self.quantize.patch_nums

  def encode_features(self, x: jax.Array) -> jax.Array:
    """Images `[B, H, W, 3]` in [-1, 1] -> latents `f: [B, H/16, W/16, C]`."""
    return self.quant_conv(self.encoder(x))

  def encode(self, x: jax.Array) -> list[jax.Array]:
    """Images `[B, H, W, 3]` -> codes per scale, each `[B, pn*pn]` int32 (VAR's
    `img_to_idxBl`)."""
    return self.quantize.features_to_codes(self.encode_features(x))[0]

  def fhat_to_img(self, f_hat: jax.Array) -> jax.Array:
    """Latents `[B, h, w, C]` -> images `[B, 16h, 16w, 3]` clamped to [-1, 1]."""
    return jnp.clip(self.decoder(self.post_quant_conv(f_hat)), -1.0, 1.0)

  def decode(self, codes: Sequence[jax.Array], all_scales: bool = False) -> jax.Array:
    """Codes per scale -> the final image `[B, H, W, 3]`, or with `all_scales` the
    coarse-to-fine previews `[S, B, H, W, 3]` (one decoder call over `S*B` latents; VAR's
    `idxBl_to_img`)."""
    f_hats = self.quantize.codes_to_fhats(codes)
    if not all_scales:
      return self.fhat_to_img(f_hats[-1])
    stacked = jnp.stack(f_hats)
    imgs = self.fhat_to_img(stacked.reshape((-1,) + stacked.shape[2:]))
    return imgs.reshape(stacked.shape[:2] + imgs.shape[1:])

  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Training forward: `(reconstruction [B, H, W, 3] unclamped, vq_loss [])`.

    The loss is VAR's: mean over scales of `beta * |sg(f_hat) - f|^2 + |f_hat - sg(f)|^2`;
    the decoder sees the straight-through `f + sg(f_hat - f)`.
    """
    f = self.encode_features(x).astype(jnp.float32)
    f_sg = jax.lax.stop_gradient(f)
    _, f_hats = self.quantize.features_to_codes(f_sg)
    beta = self.quantize.beta
    vq_loss = sum(beta * jnp.mean((jax.lax.stop_gradient(fh) - f) ** 2)
                  + jnp.mean((fh - f_sg) ** 2) for fh in f_hats) / len(f_hats)
    f_hat = f + jax.lax.stop_gradient(f_hats[-1] - f)
    return self.decoder(self.post_quant_conv(f_hat)), vq_loss


def check_config(cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the field when the VQ-VAE config is inconsistent."""
  down = 2 ** (len(cfg.ch_mult) - 1)
  if cfg.resolution % down:
    raise ValueError(f'resolution {cfg.resolution} is not a multiple of the '
                     f'downsampling factor {down}.')
  if cfg.patch_nums[-1] != cfg.resolution // down:
    raise ValueError(
        f'The last patch_num ({cfg.patch_nums[-1]}) must equal the latent size '
        f'resolution/{down} = {cfg.resolution // down}; use res=256 with '
        '1,2,3,4,5,6,8,10,13,16 or res=512 with 1,2,3,4,6,9,13,18,24,32.')
  if list(cfg.patch_nums) != sorted(set(cfg.patch_nums)):
    raise ValueError(f'patch_nums must be strictly increasing, got {cfg.patch_nums}.')
  widths = sorted({cfg.ch * m for m in cfg.ch_mult})
  if any(w % norm_groups(cfg) for w in widths):
    raise ValueError(f'norm_groups {norm_groups(cfg)} must divide every level width '
                     f'ch * ch_mult = {widths}.')


def norm_groups(cfg: ml_collections.ConfigDict) -> int:
  """GroupNorm groups: VAR's 32 unless the config sets `norm_groups` (small models)."""
  return cfg.get('norm_groups', 32)


def num_tokens(patch_nums: Sequence[int]) -> int:
  """Total tokens of the pyramid, e.g. 680 for 1,2,3,4,5,6,8,10,13,16."""
  return sum(pn * pn for pn in patch_nums)


def scale_slices(patch_nums: Sequence[int]) -> list[tuple[int, int]]:
  """(begin, end) of each scale in the flattened token sequence."""
  ends = np.cumsum([pn * pn for pn in patch_nums]).tolist()
  return list(zip([0] + ends[:-1], ends))
