"""Synthetic Hugging Face-style ARGenSeg directories for tests and benchmarks: the
released layout (`config.json`, `added_tokens.json`, sharded safetensors with their
index) holding random weights, for any config.

  write_hf_dir(load_config('argenseg:variant=mid'), 'tmp/hf', shards=4, dtype=ml_dtypes.bfloat16)
"""

import functools
import json
import pathlib

import ml_collections
import numpy as np

from argenseg_jax.checkpoints import params
from argenseg_jax.models import argenseg_io
from argenseg_jax.models.argenseg import ARGenSeg

# A parameter's checkpoint shape from its converted shape: the inverse of each transform.
CHECKPOINT_SHAPE = {
    'identity': lambda s: s,
    'conv_oihw_to_hwio': lambda s: (s[3], s[2], s[0], s[1]),
    'linear_oi_to_io': lambda s: s[::-1],
    'linear_to_heads_in': lambda s, heads, head_dim: (s[2], heads * head_dim),
    'packed_qkv': lambda s, part, kv_heads, groups, head_dim: (
        kv_heads * (groups + 2) * head_dim, s[0]),
    'pad_rows': lambda s, n, padded: (n,) + tuple(s[1:]),
    'linear_oi_to_io_pad': lambda s, n, padded: (n, s[0]),
}


def checkpoint_shapes(cfg: ml_collections.ConfigDict) -> dict[str, tuple]:
  """`{checkpoint key: shape}` of an ARGenSeg checkpoint for `cfg`."""
  ours = params.shapes(params.abstract(functools.partial(ARGenSeg, cfg)))
  return {r.theirs: tuple(CHECKPOINT_SHAPE[r.transform](ours[r.ours], *r.args))
          for r in argenseg_io.conversion_table(cfg)}


def write_hf_dir(cfg: ml_collections.ConfigDict, out, *, shards: int = 2,
                 dtype=np.float32, seed: int = 0,
                 shapes: dict[str, tuple] | None = None) -> pathlib.Path:
  """Writes a directory that `load_pretrained(out, vqvae_config=cfg.vqvae)` loads as a
  model of `cfg`, with N(0, 0.02) weights in `dtype`; the keys are dealt round-robin
  into `shards` files, written one shard at a time. `shapes` (`{key: shape}`, by default
  `checkpoint_shapes(cfg)`, which follows our conversion table) are the keys written:
  tests give ones made from the reference key listing."""
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  (out / 'config.json').write_text(json.dumps(argenseg_io.config_to_hf(cfg)))
  (out / 'added_tokens.json').write_text(json.dumps(argenseg_io.added_tokens(cfg)))
  shapes = checkpoint_shapes(cfg) if shapes is None else shapes
  keys = sorted(shapes)
  rng = np.random.default_rng(seed)
  weight_map = {}
  for i in range(shards):
    name = f'model-{i + 1:05d}-of-{shards:05d}.safetensors'
    part = keys[i::shards]
    save_file({k: (0.02 * rng.standard_normal(shapes[k], np.float32)).astype(dtype)
               for k in part}, str(out / name))
    weight_map.update(dict.fromkeys(part, name))
  (out / 'model.safetensors.index.json').write_text(json.dumps({'weight_map': weight_map}))
  return out
