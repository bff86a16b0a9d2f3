"""Small configs and checkpoint writers shared by tests."""

import json
import pathlib
import re

import numpy as np

from argenseg_jax.checkpoints import params
from argenseg_jax.config_args import load_config
from argenseg_jax.models import var_vqvae_io

SMALL_VQVAE = 'var_vqvae:variant=tiny,res=64,patch_nums=1+2+3+4,vocab_size=64'

# Shape after each conversion transform, from the checkpoint's shape.
CONVERTED_SHAPE = {'identity': lambda s: s, 'conv_oihw_to_hwio': lambda s: (s[2], s[3], s[1], s[0]),
                   'linear_oi_to_io': lambda s: s[::-1]}


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


# A key of a numbered layer: (its stack, its index).
_LAYERS = re.compile(r'^(vision_model\.encoder|language_model\.model)\.layers\.(\d+)\.')


def scaled_listing(listing: dict[str, tuple], cfg) -> dict[str, tuple]:
  """`{key: shape}` of an ARGenSeg checkpoint for the small `cfg`, made from the
  ARGenSeg-8B `listing` alone: layers beyond `cfg`'s dropped, every size replaced by
  `cfg`'s size of the same meaning in the PyTorch modules (not from our tables)."""
  v, llm, vq = cfg.image.vision, cfg.llm, cfg.vqvae
  assert (v.qkv_bias, v.qk_normalization, v.norm_type) == (True, False, 'layer_norm')
  assert (tuple(vq.ch_mult), vq.num_res_blocks, vq.share_quant_resi, vq.quant_conv_ks) == (
      (1, 1, 2, 2, 4), 2, 4, 3)
  d, merged, ch = llm.hidden_size, 4 * v.hidden_size, vq.ch  # mlp1 sees 2x2 patches
  scales = len(vq.patch_nums)
  sizes = {  # ARGenSeg-8B size -> ours, by meaning (the listing's header); first prefix
      'vision_model.': {1024: v.hidden_size, 3072: 3 * v.hidden_size,
                        4096: v.intermediate_size, 14: v.patch_size, 3: v.num_channels,
                        1025: (v.image_size // v.patch_size) ** 2 + 1},
      'mlp1.0.': {4096: merged},
      'mlp1.': {4096: d},
      'language_model.': {
          96653: llm.vocab_size, 4096: d, 14336: llm.intermediate_size,
          6144: (llm.num_attention_heads + 2 * llm.num_key_value_heads) * llm.head_dim},
      'image_tokenizer.': {160: ch, 320: 2 * ch, 640: 4 * ch, 1920: 12 * ch, 3: 3,
                           32: vq.z_channels, 4096: vq.vocab_size, 10: scales},
      '': {4096: d, 32: vq.z_channels, 10: scales,
           680: sum(p * p for p in vq.patch_nums)},
  }
  layers = {'vision_model.encoder': v.num_hidden_layers,
            'language_model.model': llm.num_hidden_layers}
  out = {}
  for key, shape in listing.items():
    m = _LAYERS.match(key)
    if m and int(m.group(2)) >= layers[m.group(1)]:
      continue
    if key == 'mlp1.1.weight':  # Linear(4 x ViT width -> LLM width): [out, in]
      out[key] = (d, merged)
      continue
    family = sizes[next(p for p in sizes if key.startswith(p))]
    out[key] = tuple(1 if n == 1 else family[n] for n in shape)
  return out


def small_vqvae_config():
  return load_config(SMALL_VQVAE)


def export_state_dict(model, table) -> dict[str, np.ndarray]:
  """Our parameters in the checkpoint's key names and layouts (the inverse of `table`)."""
  return params.to_state_dict(model, table)


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


def golden_prompts(name: str) -> tuple[list[list[int]], np.ndarray]:
  """The golden ARGenSeg fixture's generation prompts `name` (unpadded id lists) and
  pixels `[B, S, S, 3]`."""
  from tests.conftest import golden_fixture  # pylint: disable=import-outside-toplevel
  x = np.load(golden_fixture('argenseg') / 'inputs.npz')
  ids, mask = x[f'gen_input_ids_{name}'], x[f'gen_attention_mask_{name}'].astype(bool)
  pixels = x['pixel_values'].transpose(0, 2, 3, 1)
  return [row[m].tolist() for row, m in zip(ids, mask)], pixels
