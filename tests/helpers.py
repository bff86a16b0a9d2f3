"""Small configs and checkpoint writers shared by tests."""

import numpy as np
from flax import nnx

from argenseg_jax.checkpoints import conversion
from argenseg_jax.config_args import load_config
from argenseg_jax.models import var_vqvae_io

SMALL_VQVAE = 'var_vqvae:variant=tiny,res=64,patch_nums=1+2+3+4,vocab_size=64'

_INVERSE = {'identity': lambda a: a,
            'conv_oihw_to_hwio': lambda a: a.transpose(3, 2, 0, 1),
            'linear_oi_to_io': lambda a: a.T}


def small_vqvae_config():
  return load_config(SMALL_VQVAE)


def to_var_state_dict(model, cfg) -> dict[str, np.ndarray]:
  """Our VQ-VAE parameters in VAR's key names and layouts (the inverse conversion)."""
  flat = conversion.flatten(nnx.to_pure_dict(nnx.state(model, nnx.Param)))
  sd = {r.theirs: np.ascontiguousarray(_INVERSE[r.transform](np.asarray(flat[r.ours])))
        for r in var_vqvae_io.conversion_table(cfg)}
  sd['quantize.ema_vocab_hit_SV'] = np.zeros((len(cfg.patch_nums), cfg.vocab_size), np.float32)
  return sd
