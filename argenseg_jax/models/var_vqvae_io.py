"""Building, loading and saving the VAR VQ-VAE.

Sources: VAR's `vae_ch160v4096z32.pth` (a plain PyTorch state_dict, mapped through the
explicit table below) or our own directory format (`config.json` + `params.safetensors`
with '/'-joined parameter paths), written by `argenseg convert vae`.
"""

import json

import ml_collections
import numpy as np
from etils import epath

from argenseg_jax import config_args, user_input
from argenseg_jax.checkpoints import params
from argenseg_jax.checkpoints.atomic import DirFormat, atomic_directory, write_local
from argenseg_jax.checkpoints.conversion import Rule
from argenseg_jax.checkpoints.torch_files import CheckpointError, read_pth, read_safetensors
from argenseg_jax.models.var_vqvae import VQVAE

FORMAT = 'argenseg-jax/var_vqvae'
PARAMS_FILE = 'params.safetensors'
# What `save_vqvae` (and the mask VQ-VAE's training export, adding metrics.json) puts in a
# directory.
DIR_FORMAT = DirFormat(FORMAT, 'config.json',
                       frozenset({'config.json', PARAMS_FILE, 'metrics.json'}))
# The VQ statistics buffer is stored in VAR checkpoints but unused at inference.
EXCUSED_KEYS = ('quantize.ema_vocab_hit_SV',)


def _conv(ours: str, theirs: str) -> list[Rule]:
  return [Rule(f'{ours}/kernel', f'{theirs}.weight', 'conv_oihw_to_hwio'),
          Rule(f'{ours}/bias', f'{theirs}.bias')]


def _norm(ours: str, theirs: str) -> list[Rule]:
  return [Rule(f'{ours}/scale', f'{theirs}.weight'), Rule(f'{ours}/bias', f'{theirs}.bias')]


def _resnet(path: str, has_shortcut: bool) -> list[Rule]:
  t = path.replace('/', '.')
  rules = (_norm(f'{path}/norm1', f'{t}.norm1') + _conv(f'{path}/conv1', f'{t}.conv1')
           + _norm(f'{path}/norm2', f'{t}.norm2') + _conv(f'{path}/conv2', f'{t}.conv2'))
  if has_shortcut:
    rules += _conv(f'{path}/nin_shortcut', f'{t}.nin_shortcut')
  return rules


def _attn(path: str) -> list[Rule]:
  t = path.replace('/', '.')
  return (_norm(f'{path}/norm', f'{t}.norm') + _conv(f'{path}/qkv', f'{t}.qkv')
          + _conv(f'{path}/proj_out', f'{t}.proj_out'))


def _mid(path: str) -> list[Rule]:
  return _resnet(f'{path}/block_1', False) + _attn(f'{path}/attn_1') + _resnet(
      f'{path}/block_2', False)


def conversion_table(cfg: ml_collections.ConfigDict) -> list[Rule]:
  """Every parameter of `VQVAE(cfg)` with its VAR state_dict key and transform."""
  ch, mult, n = cfg.ch, tuple(cfg.ch_mult), cfg.num_res_blocks
  last = len(mult) - 1
  ins = (1,) + mult
  rules = _conv('encoder/conv_in', 'encoder.conv_in')
  for i in range(len(mult)):
    for b in range(n):
      cin = ch * (ins[i] if b == 0 else mult[i])
      rules += _resnet(f'encoder/down/{i}/block/{b}', cin != ch * mult[i])
      if i == last:
        rules += _attn(f'encoder/down/{i}/attn/{b}')
    if i != last:
      rules += _conv(f'encoder/down/{i}/downsample/conv', f'encoder.down.{i}.downsample.conv')
  rules += _mid('encoder/mid') + _norm('encoder/norm_out', 'encoder.norm_out')
  rules += _conv('encoder/conv_out', 'encoder.conv_out')
  rules += _conv('decoder/conv_in', 'decoder.conv_in') + _mid('decoder/mid')
  for i in range(len(mult)):
    block_in = ch * mult[i + 1] if i < last else ch * mult[-1]
    for b in range(n + 1):
      cin = block_in if b == 0 else ch * mult[i]
      rules += _resnet(f'decoder/up/{i}/block/{b}', cin != ch * mult[i])
      if i == last:
        rules += _attn(f'decoder/up/{i}/attn/{b}')
    if i != 0:
      rules += _conv(f'decoder/up/{i}/upsample/conv', f'decoder.up.{i}.upsample.conv')
  rules += _norm('decoder/norm_out', 'decoder.norm_out')
  rules += _conv('decoder/conv_out', 'decoder.conv_out')
  rules.append(Rule('quantize/embedding/embedding', 'quantize.embedding.weight'))
  for k in range(cfg.share_quant_resi):
    rules += _conv(f'quantize/phi/{k}', f'quantize.quant_resi.qresi_ls.{k}')
  rules += _conv('quant_conv', 'quant_conv') + _conv('post_quant_conv', 'post_quant_conv')
  return rules


def abstract_vqvae(cfg: ml_collections.ConfigDict) -> VQVAE:
  """The model with `ShapeDtypeStruct` parameters (no allocation)."""
  return params.abstract(lambda rngs: VQVAE(cfg, rngs))


def init_vqvae(cfg: ml_collections.ConfigDict, seed: int = 0) -> VQVAE:
  """Randomly initialised model (for tests, benchmarks and new training)."""
  return params.init(lambda rngs: VQVAE(cfg, rngs), seed)


def config_hint(checkpoint: dict, cfg: ml_collections.ConfigDict, prefix: str) -> str:
  """Names the config a VAR checkpoint was made for, when it differs from `cfg`."""
  try:
    found = dict(ch=checkpoint[prefix + 'encoder.conv_in.weight'].shape[0],
                 vocab_size=checkpoint[prefix + 'quantize.embedding.weight'].shape[0],
                 z_channels=checkpoint[prefix + 'quantize.embedding.weight'].shape[1])
  except KeyError:
    return ''
  diff = {k: v for k, v in found.items() if cfg[k] != v}
  if not diff:
    return ''
  want = ', '.join(f'{k}={cfg[k]}' for k in diff)
  got = ','.join(f'{k}={v}' for k, v in diff.items())
  return (f'The VQ-VAE weights were made for {got} but the config has {want}: load them '
          f'with the matching config, e.g. var_vqvae:{got}.')


def from_torch_state_dict(checkpoint: dict[str, np.ndarray], cfg: ml_collections.ConfigDict,
                          prefix: str = '') -> VQVAE:
  """Builds `VQVAE(cfg)` from a VAR state_dict (keys optionally under `prefix`)."""
  return params.from_checkpoint(lambda rngs: VQVAE(cfg, rngs), conversion_table(cfg),
                                checkpoint, prefix=prefix, excused=EXCUSED_KEYS,
                                hint=config_hint(checkpoint, cfg, prefix))


def save_vqvae(model: VQVAE, cfg: ml_collections.ConfigDict, out_dir,
               overwrite: bool = False) -> epath.Path:
  """Writes `out_dir/{config.json, params.safetensors}` atomically (temp dir + rename);
  a non-empty `out_dir` we did not write is refused unless `overwrite`."""
  with atomic_directory(out_dir, DIR_FORMAT, overwrite) as tmp:
    write_local(tmp / PARAMS_FILE, lambda file: params.save_safetensors(model, file))
    (tmp / 'config.json').write_text(json.dumps(
        {'format': FORMAT, 'version': 1, 'model': cfg.to_dict()}, indent=1))
  return user_input.path(out_dir, absolute=True)


def load_vqvae(path, cfg: ml_collections.ConfigDict | None = None
               ) -> tuple[VQVAE, ml_collections.ConfigDict]:
  """Loads our directory format, or a VAR `.pth` (then `cfg` defaults to the real config).

  Returns `(model, cfg)`. A config given for our format must agree with the stored one.
  """
  path = user_input.path(path)
  if not path.exists():
    raise FileNotFoundError(f'VQ-VAE checkpoint not found: {path}')
  if path.is_dir():
    meta_file = path / 'config.json'
    if not meta_file.is_file():
      raise CheckpointError(f'{path} has no config.json: not a checkpoint written by '
                            '`argenseg convert vae`.')
    meta = json.loads(meta_file.read_text())
    if meta.get('format') != FORMAT:
      raise CheckpointError(f'{meta_file} has format {meta.get("format")!r}, expected {FORMAT!r}.')
    stored = config_args.from_json(meta['model'])
    if cfg is not None and cfg.to_dict() != stored.to_dict():
      raise CheckpointError(f'{path} was saved with config {stored.to_dict()}, which '
                            f'differs from the requested {cfg.to_dict()}.')
    return params.load_safetensors(abstract_vqvae(stored), path / PARAMS_FILE), stored
  if cfg is None:
    cfg = config_args.load_config('var_vqvae')
  if path.suffix == '.safetensors':
    return from_torch_state_dict(read_safetensors(path), cfg), cfg
  return from_torch_state_dict(read_pth(path), cfg), cfg


def config_from_var_kwargs(kwargs: dict, resolution: int) -> ml_collections.ConfigDict:
  """Our config from the constructor arguments of VAR's `VQVAE(...)`."""
  unsupported = {k: kwargs[k] for k, ok in (('using_znorm', False), ('dropout', 0.0))
                 if k in kwargs and kwargs[k] != ok}
  if unsupported:
    raise ValueError(f'VQVAE options {unsupported} are not supported (ARGenSeg and VAR use '
                     'using_znorm=False, dropout=0).')
  cfg = config_args.load_config('var_vqvae:' + ','.join([
      f'res={resolution}', f'ch={kwargs["ch"]}', f'vocab_size={kwargs["vocab_size"]}',
      f'z_channels={kwargs["z_channels"]}',
      'patch_nums=' + '+'.join(str(p) for p in kwargs['v_patch_nums'])]))
  for ours, theirs in (('beta', 'beta'), ('quant_conv_ks', 'quant_conv_ks'),
                       ('quant_resi', 'quant_resi'), ('share_quant_resi', 'share_quant_resi')):
    if theirs in kwargs:
      cfg[ours] = kwargs[theirs]
  return cfg
