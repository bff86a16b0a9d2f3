"""Host-facing VQ-VAE API: validated inputs, compiled once per shape.

  tok = VQVAETokenizer.load('ckpt/vae')            # or a VAR .pth
  codes = tok.encode(images)                       # list of [B, pn*pn] int32
  recon = tok.decode(codes)                        # [B, H, W, 3] in [-1, 1]
  var_in = tok.var_input(codes)                    # [B, L-1, Cvae]

Inside a larger jitted program (the sampler, the train step) call the `VQVAE` module's
methods directly instead.
"""

import functools
import operator

import jax
import ml_collections
import numpy as np
from flax import nnx

from argenseg_jax.models import var_vqvae_io
from argenseg_jax.models.var_vqvae import VQVAE, scale_slices


class VQVAETokenizer:
  """A VQ-VAE with its config, parameters as a jit argument, and input checks."""

  def __init__(self, model: VQVAE, cfg: ml_collections.ConfigDict):
    self.cfg = cfg
    self.graphdef, self.state = nnx.split(model)

  @classmethod
  def load(cls, path, cfg: ml_collections.ConfigDict | None = None) -> 'VQVAETokenizer':
    return cls(*var_vqvae_io.load_vqvae(path, cfg))

  @classmethod
  def random(cls, cfg: ml_collections.ConfigDict, seed: int = 0) -> 'VQVAETokenizer':
    return cls(var_vqvae_io.init_vqvae(cfg, seed), cfg)

  @property
  def patch_nums(self) -> tuple[int, ...]:
    return tuple(self.cfg.patch_nums)

  @functools.cached_property
  def _jitted(self):
    def call(method, static_kwargs, state, *args):
      model = nnx.merge(self.graphdef, state)
      return operator.attrgetter(method)(model)(*args, **dict(static_kwargs))
    return jax.jit(call, static_argnums=(0, 1))

  def _call(self, method: str, *args, **static_kwargs):
    return self._jitted(method, tuple(sorted(static_kwargs.items())), self.state, *args)

  def check_images(self, images) -> np.ndarray:
    """`[B, H, W, 3]` float in [-1, 1] at the configured resolution, else ValueError."""
    x = np.asarray(images)
    res = self.cfg.resolution
    if x.ndim == 3:
      raise ValueError(f'images must be batched [B, H, W, 3]; got {x.shape} (add a batch '
                       'axis with x[None]).')
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f'images must be [B, H, W, 3] RGB (channels last); got shape '
                       f'{x.shape}. Convert grey or RGBA masks to RGB first.')
    if x.shape[1] % 16 or x.shape[2] % 16:
      raise ValueError(f'image size {x.shape[1]}x{x.shape[2]} is not a multiple of 16.')
    if x.shape[1:3] != (res, res):
      raise ValueError(f'images are {x.shape[1]}x{x.shape[2]} but this tokenizer works at '
                       f'{res}x{res} (patch_nums {self.patch_nums}); resize them, or use '
                       'the config with the matching res.')
    if not np.issubdtype(x.dtype, np.floating):
      raise ValueError(f'images must be float in [-1, 1], got dtype {x.dtype} (for uint8 '
                       'pixels use x / 127.5 - 1).')
    if not np.isfinite(x).all():
      raise ValueError('images must be finite; got NaN or inf values.')
    if np.abs(x).max(initial=0) > 1.0 + 1e-3:
      raise ValueError(f'images must be in [-1, 1]; got range [{x.min():.3g}, {x.max():.3g}] '
                       '(for 0..255 pixels use x / 127.5 - 1).')
    return x.astype(np.float32)

  def check_codes(self, codes) -> list[np.ndarray]:
    """A list of one `[B, pn*pn]` integer array per scale with values in [0, V)."""
    if len(codes) != len(self.patch_nums):
      raise ValueError(f'expected codes for {len(self.patch_nums)} scales '
                       f'{self.patch_nums}, got {len(codes)}.')
    out, batch = [], np.asarray(codes[0]).shape[0] if np.ndim(codes[0]) else None
    for si, (c, pn) in enumerate(zip(codes, self.patch_nums)):
      c = np.asarray(c)
      if not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f'codes of scale {si} must be integers, got {c.dtype}.')
      if c.shape != (batch, pn * pn):
        raise ValueError(f'codes of scale {si} must have shape [B={batch}, {pn * pn}], '
                         f'got {list(c.shape)}.')
      if c.min(initial=0) < 0 or c.max(initial=0) >= self.cfg.vocab_size:
        raise ValueError(f'codes of scale {si} must lie in [0, {self.cfg.vocab_size}); '
                         f'got [{c.min()}, {c.max()}].')
      out.append(c.astype(np.int32))
    return out

  def split_codes(self, flat) -> list[np.ndarray]:
    """Codes of all scales side by side `[B, L]` -> one `[B, pn*pn]` array per scale."""
    flat = np.asarray(flat)
    return [flat[:, a:b] for a, b in scale_slices(self.patch_nums)]

  def encode(self, images) -> list[np.ndarray]:
    """Images `[B, H, W, 3]` in [-1, 1] -> codes per scale, `[B, pn*pn]` int32."""
    codes = self._call('encode', self.check_images(images))
    return [np.asarray(c) for c in codes]

  def decode(self, codes, all_scales: bool = False) -> np.ndarray:
    """Codes -> images `[B, H, W, 3]` in [-1, 1], or `[S, B, H, W, 3]` previews."""
    return np.asarray(self._call('decode', self.check_codes(codes),
                                 all_scales=all_scales))

  def var_input(self, codes) -> np.ndarray:
    """Codes -> teacher-forcing inputs `[B, L - 1, Cvae]`."""
    return np.asarray(self._call('quantize.codes_to_var_input', self.check_codes(codes)))
