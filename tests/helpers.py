"""Small configs and checkpoint writers shared by tests."""

import json
import pathlib

import numpy as np
from flax import nnx

from argenseg_jax.checkpoints import conversion
from argenseg_jax.config_args import load_config
from argenseg_jax.models import var_vqvae_io

SMALL_VQVAE = 'var_vqvae:variant=tiny,res=64,patch_nums=1+2+3+4,vocab_size=64'

# Shape after each conversion transform, from the checkpoint's shape.
CONVERTED_SHAPE = {'identity': lambda s: s, 'conv_oihw_to_hwio': lambda s: (s[2], s[3], s[1], s[0]),
                   'linear_oi_to_io': lambda s: s[::-1]}
_INVERSE = {'identity': lambda a: a,
            'conv_oihw_to_hwio': lambda a: a.transpose(3, 2, 0, 1),
            'linear_oi_to_io': lambda a: a.T}


def read_keys_tsv(path) -> dict[str, tuple]:
  """`{key: shape}` from a `shared/reference/*-keys.tsv` listing (comments skipped)."""
  rows = {}
  for line in path.read_text().splitlines():
    parts = line.split('\t')
    if line.startswith('#') or len(parts) < 2:
      continue
    rows[parts[0]] = tuple(int(v) for v in parts[1].strip('[] ').split(',') if v.strip())
  if not rows:
    raise ValueError(f'no keys parsed from {path}')
  return rows


def small_vqvae_config():
  return load_config(SMALL_VQVAE)


def export_state_dict(model, table) -> dict[str, np.ndarray]:
  """Our parameters in the checkpoint's key names and layouts (the inverse of `table`)."""
  flat = conversion.flatten(nnx.to_pure_dict(nnx.state(model, nnx.Param)))
  return {r.theirs: np.ascontiguousarray(_INVERSE[r.transform](np.asarray(flat[r.ours])))
          for r in table}


def to_var_state_dict(model, cfg) -> dict[str, np.ndarray]:
  """Our VQ-VAE as a VAR state_dict, with the unused VQ statistics buffer."""
  sd = export_state_dict(model, var_vqvae_io.conversion_table(cfg))
  sd['quantize.ema_vocab_hit_SV'] = np.zeros((len(cfg.patch_nums), cfg.vocab_size), np.float32)
  return sd


def make_hf_dir(fixture: pathlib.Path, out: pathlib.Path, *, shards: int = 2) -> pathlib.Path:
  """A Hugging Face-style ARGenSeg directory (config.json, sharded safetensors + index,
  added_tokens.json) holding the weights of the golden `argenseg` fixture."""
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  from argenseg_jax.checkpoints.torch_files import read_safetensors  # pylint: disable=import-outside-toplevel
  out.mkdir(parents=True, exist_ok=True)
  config = json.loads((fixture / 'config.json').read_text())
  chat = dict(config['ctor_kwargs'], architectures=['InternVLChatModel'])
  (out / 'config.json').write_text(json.dumps(chat))
  (out / 'added_tokens.json').write_text(json.dumps(config['token_ids']))
  weights = read_safetensors(fixture / 'model.safetensors')
  keys = sorted(weights)
  weight_map = {}
  for i in range(shards):
    name = f'model-{i + 1:05d}-of-{shards:05d}.safetensors'
    part = keys[i::shards]
    save_file({k: weights[k] for k in part}, str(out / name))
    weight_map.update({k: name for k in part})
  (out / 'model.safetensors.index.json').write_text(json.dumps({'weight_map': weight_map}))
  return out
