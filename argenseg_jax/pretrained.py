"""Loading ARGenSeg checkpoints: released Hugging Face-style directories and our own.

  model, cfg = load_pretrained('ARGenSeg-8B/')                  # HF directory
  model, cfg = load_pretrained('ARGenSeg-8B/', vae='vae_ch160v4096z32.pth')
  convert_pretrained('ARGenSeg-8B/', 'ckpt/argenseg')           # -> our orbax format
  model, cfg = load_pretrained('ckpt/argenseg')

Every checkpoint key goes through the explicit conversion table; a missing, unused or
misshaped key is an error that names it. `convert_pretrained` streams: it never holds the
whole state dict or model (host RAM stays near the largest tensor; see
`checkpoints/streaming.py`).
"""

import functools
import json

import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath
from flax import nnx

from argenseg_jax import config_args, dir_json, sharding, user_input
from argenseg_jax.checkpoints import conversion, hf_dir, layer_stacks, params, streaming
from argenseg_jax.checkpoints.atomic import DirFormat, atomic_directory, check_target, write_local
from argenseg_jax.checkpoints.torch_files import CheckpointError, read_pth
from argenseg_jax.models import argenseg_io, var_vqvae_io
from argenseg_jax.models.argenseg import ARGenSeg

FORMAT = 'argenseg-jax/argenseg'
META_FILE = 'argenseg.json'
SAFETENSORS_FILE = 'params.safetensors'
ARCHITECTURES = ('InternVLGenSeg', 'InternVLChatModel')
VAE_PREFIX = 'image_tokenizer.'


def _open_hf(path: epath.Path, vae, vqvae_config) -> tuple[dict, ml_collections.ConfigDict]:
  """`(weights, cfg)` of a Hugging Face-style directory: `hf_dir.LazyTensor`s (and the
  arrays of `vae`), nothing read yet."""
  chat = hf_dir.read_config(path)
  archs = chat.get('architectures') or []
  if not set(archs) & set(ARCHITECTURES):
    raise CheckpointError(f'{path}/config.json has architectures {archs}; supported: '
                          f'{", ".join(ARCHITECTURES)} (an ARGenSeg / InternVL2.5 checkpoint).')
  token_ids = hf_dir.read_added_tokens(path)
  if vqvae_config is None:
    vqvae_config = config_args.load_config(f'var_vqvae:res={chat.get("gen_img_reso", 256)}')
  cfg = argenseg_io.config_from_hf(chat, token_ids, vqvae_config)
  weights = hf_dir.open_weights(path)
  if vae is not None:
    weights = {k: v for k, v in weights.items() if not k.startswith(VAE_PREFIX)}
    weights.update({VAE_PREFIX + k: v for k, v in read_pth(vae).items()})
  elif not any(k.startswith(VAE_PREFIX) for k in weights):
    raise CheckpointError(f'{path} holds no {VAE_PREFIX}* weights: pass the VAR tokenizer '
                          'too (vae=... / --vae vae_ch160v4096z32.pth).')
  return weights, cfg


def _from_hf(path: epath.Path, vae, vqvae_config) -> tuple[ARGenSeg, ml_collections.ConfigDict]:
  weights, cfg = _open_hf(path, vae, vqvae_config)
  return argenseg_io.from_state_dict(weights, cfg), cfg


TOKENIZER_FILES = ('tokenizer.model', 'byte_tokenizer.json', 'added_tokens.json',
                   'tokenizer_config.json', 'special_tokens_map.json')
# What our writers put in a checkpoint directory (`atomic.check_target` refuses others).
DIR_FORMAT = DirFormat(FORMAT, META_FILE,
                       frozenset({META_FILE, 'params', SAFETENSORS_FILE, *TOKENIZER_FILES}))


# What `export_hf` writes: the original's layout, with a marker of its own (not ours
# `argenseg.json`, so that `load_pretrained` reads it as a Hugging Face-style directory).
HF_EXPORT_FORMAT = DirFormat('argenseg-jax/hf-export', 'argenseg_export.json', frozenset({
    'argenseg_export.json', 'config.json', 'model.safetensors', *TOKENIZER_FILES}))


def _write_dir(out_dir, tokenizer_dir, write, overwrite: bool,
               fmt: DirFormat = DIR_FORMAT) -> epath.Path:
  """Writes the `fmt` directory `out_dir` atomically: the tokenizer files of
  `tokenizer_dir` (if any) copied, then `write(tmp)` (the rest, its marker included)."""
  with atomic_directory(out_dir, fmt, overwrite) as tmp:
    for name in TOKENIZER_FILES:
      if tokenizer_dir is not None and (user_input.path(tokenizer_dir) / name).is_file():
        (user_input.path(tokenizer_dir) / name).copy(tmp / name)
    write(tmp)
  return user_input.path(out_dir, absolute=True)


def _ours(cfg: ml_collections.ConfigDict, write_params):
  """`write` for `_write_dir`: the parameters, then `argenseg.json`."""
  def write(tmp):
    write_params(tmp)
    (tmp / META_FILE).write_text(json.dumps(
        {'format': FORMAT, 'version': 1, 'config': cfg.to_dict()}, indent=1))
  return write


def export_hf(model: ARGenSeg, cfg: ml_collections.ConfigDict, out_dir, tokenizer_dir=None,
              overwrite: bool = False) -> epath.Path:
  """Writes `out_dir` in the released layout, the original's key names and shapes: one
  `model.safetensors` (layer stacks split into `...layers.<i>...`, the packed `wqkv`
  rebuilt, the vocabulary padding dropped), `config.json`, `added_tokens.json` (unless
  `tokenizer_dir` has one) and the tokenizer files. `load_pretrained(out_dir,
  vqvae_config=cfg.vqvae)` reads it back."""
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  state = params.to_state_dict(model, argenseg_io.conversion_table(cfg))

  def write(tmp):
    write_local(tmp / 'model.safetensors', lambda file: save_file(state, str(file)))
    (tmp / 'config.json').write_text(json.dumps(argenseg_io.config_to_hf(cfg), indent=1))
    if not (tmp / 'added_tokens.json').exists():
      (tmp / 'added_tokens.json').write_text(json.dumps(argenseg_io.added_tokens(cfg)))
    (tmp / HF_EXPORT_FORMAT.marker).write_text(json.dumps({'format': HF_EXPORT_FORMAT.format}))
  return _write_dir(out_dir, tokenizer_dir, write, overwrite, HF_EXPORT_FORMAT)


def save_pretrained(model: ARGenSeg, cfg: ml_collections.ConfigDict, out_dir,
                    tokenizer_dir=None, params_format: str = 'orbax',
                    overwrite: bool = False) -> epath.Path:
  """Writes `out_dir/{argenseg.json, params/}` (orbax) or, with `params_format=
  'safetensors'`, `out_dir/{argenseg.json, params.safetensors}` (one file, for small
  models shipped in the package) atomically, with the tokenizer files of
  `tokenizer_dir` copied along. A non-empty `out_dir` that we did not write is refused
  unless `overwrite` (see `atomic.check_target`)."""
  def write_orbax(tmp):
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp / 'params', nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    checkpointer.wait_until_finished()
  writers = {'orbax': write_orbax,
             'safetensors': lambda tmp: write_local(
                 tmp / SAFETENSORS_FILE, lambda file: params.save_safetensors(model, file))}
  if params_format not in writers:
    raise ValueError(f'params_format must be one of {sorted(writers)}, got {params_format!r}.')
  return _write_dir(out_dir, tokenizer_dir, _ours(cfg, writers[params_format]), overwrite)


def _from_ours(path: epath.Path) -> tuple[ARGenSeg, ml_collections.ConfigDict]:
  meta = dir_json.read_json(path / META_FILE, CheckpointError)
  if meta.get('format') != FORMAT:
    raise CheckpointError(f'{path / META_FILE}: format {meta.get("format")!r}, expected '
                          f'{FORMAT!r}.')
  cfg = config_args.from_json(meta['config'])
  model = params.abstract(functools.partial(ARGenSeg, cfg))
  if (path / SAFETENSORS_FILE).is_file():
    return params.load_safetensors(model, path / SAFETENSORS_FILE), cfg
  if not (path / 'params').is_dir():
    raise CheckpointError(f'{path} has neither params/ nor {SAFETENSORS_FILE}: the checkpoint '
                          'is incomplete.')
  target = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  try:
    flat = conversion.flatten(ocp.StandardCheckpointer().restore(path / 'params', target))
  except Exception as e:  # orbax raises bare Exceptions for damaged files
    flat = _earlier_layout(path / 'params', target)
    if flat is None:
      cause = str(e.__cause__ or e).splitlines()[0][:300]
      raise CheckpointError(f'{path / "params"} cannot be read (truncated or damaged?): '
                            f'{cause}') from e
  return params.with_params(model, flat), cfg


def _earlier_layout(directory: epath.Path, target: dict) -> dict | None:
  """The parameters of a checkpoint written before the layer stacks and the vocabulary
  padding (one entry per layer, `params.with_params` converts them), or None when the
  directory holds something else."""
  try:
    flat = conversion.flatten(ocp.StandardCheckpointer().restore(directory))
  except Exception:  # pylint: disable=broad-except
    return None
  per_layer = any(layer_stacks.stacked_key(k) for k in flat)
  return flat if per_layer and layer_stacks.stacked_names(flat) == set(
      conversion.flatten(target)) else None


def load_pretrained(path, *, vae=None,
                    vqvae_config: ml_collections.ConfigDict | None = None
                    ) -> tuple[ARGenSeg, ml_collections.ConfigDict]:
  """`(model, cfg)` from our directory (`argenseg.json`) or a Hugging Face-style one.

  vae: a VAR `.pth` for the image tokenizer, used instead of the directory's
  `image_tokenizer.*` weights (needed when it has none). vqvae_config: the tokenizer's
  config (default: the real one, 256 px unless config.json sets `gen_img_reso`).
  """
  path = user_input.path(path, absolute=True)
  if (path / META_FILE).is_file():
    return _from_ours(path)
  return _from_hf(path, vae, vqvae_config)


def convert_pretrained(src, dst, *, vae=None,
                       vqvae_config: ml_collections.ConfigDict | None = None,
                       mesh: jax.sharding.Mesh | None = None,
                       overwrite: bool = False) -> epath.Path:
  """Converts a Hugging Face-style ARGenSeg directory into our format at `dst`: what
  `save_pretrained(*load_pretrained(src, ...), dst, tokenizer_dir=src)` writes (same tree,
  dtypes and values; the arrays stored uncompressed), but streaming.

  All keys and shapes are checked first (from the safetensors headers); then one tensor
  at a time is read (large ones in row blocks), converted and handed to a group that
  orbax writes once it reaches the largest tensor's size, so host RAM stays near the
  largest tensor (plus a `vae` .pth, which is read whole). `mesh`: each array is first
  placed with its parameter's sharding (`sharding.param_shardings`), for hosts whose
  accelerators should hold the shards. `dst` is checked first, as by `save_pretrained`.
  """
  dst = check_target(dst, DIR_FORMAT, overwrite)
  src = user_input.path(src, absolute=True)
  weights, cfg = _open_hf(src, vae, vqvae_config)
  model = params.abstract(functools.partial(ARGenSeg, cfg))
  reads = conversion.convert_lazily(
      argenseg_io.conversion_table(cfg), weights, params.shapes(model),
      excused=tuple(VAE_PREFIX + k for k in var_vqvae_io.EXCUSED_KEYS),
      hint=var_vqvae_io.config_hint(weights, cfg.vqvae, VAE_PREFIX))
  like = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  shardings = None if mesh is None else conversion.flatten(
      nnx.to_pure_dict(nnx.state(sharding.param_shardings(model, mesh), nnx.Param)))
  return _write_dir(dst, src, _ours(cfg, lambda tmp: write_local(
      tmp / 'params', lambda local: streaming.save_in_groups(local, reads, like, shardings))),
      overwrite)
