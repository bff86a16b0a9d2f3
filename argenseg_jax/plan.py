"""Memory and FLOPs plan of ARGenSeg on a mesh, from shapes alone (nothing allocated).

  argenseg plan --config argenseg:variant=8b --mesh data=1,fsdp=64,tensor=1 --device v5p \
      --batch 128 --seq-len 8192 --grad-accum 2

Parameters come from the abstract model (`nnx.eval_shape`) and are sharded by
`sharding.param_specs` on an abstract mesh of any size; every figure is bytes per
device. Frozen: the train config's `frozen` parts (`--frozen`, matched as training does,
`train_state.is_frozen`), by default as ARGenSeg trains: the InternViT (`vision_model`;
`mlp1` is trained) and the VQ-VAE (`image_tokenizer`); everything else is trainable.

Recipe, bytes per parameter element (`--recipe`), as `training/train_step.py` runs it:
  mixed (compute_dtype bf16): trainable = f32 master (4) + its bf16 compute copy (2,
         cast inside the loss); frozen = f32 as built (4); gradients = f32 (4), + the
         f32 accumulator (4) when grad_accum > 1; AdamW mu + nu = f32 (8), trainable
         only; activations in bf16.
  f32:   the same without the compute copy, activations in f32.

Training activations, one micro-step of `batch / grad_accum` samples of L tokens, each
array sized by its `sharding.ACT_RULES` shard (c = activation bytes, 2 for bf16):
  saved, remat (each decoder layer rematerialised): the input of every layer and of the
    final norm, (layers + 1) x [B, L, D] x c, plus the attention mask (below);
    without remat: every layer's forward intermediates (below) and its attention
    probabilities [B, H, L, L] x (4 + c).
  transient, the largest of
    - one layer's recompute + backward: 2 x its forward intermediates (values and
      cotangents: 6 [B, L, D] gathered over tensor, 3 [B, L, H, hd], 3 [B, L, KV, hd],
      4 [B, L, F]) + the attention's own arrays (below) + two layers' weights gathered
      over fsdp (the one in use and the prefetched one);
    - the loss, computed `loss_chunk` positions at a time (`losses.chunked_nll`): 3 x
      [B, chunk, V_padded] f32 (logits, their exponentials, dlogits) + the gathered head;
    - the frozen ViT forward of the tiles (one layer: 6 [T, n, C] + 2 [T, n, F_vit] +
      2 [T, h, n, n] f32) and the frozen VQ-VAE encode of the masks (6 f32 maps of
      [M, res, res, ch]).
Attention (`--attention`, default the model config's `llm.attention`): 'xla' holds the
scores, [B, H, L, T] x (4 + c + 8) in the backward pass (f32 probs, cast probs, f32
dprobs and dscores; x (8 + c) in a forward), and the f32 additive mask [B, 1, L, T];
'cudnn' no scores, the mask as f32 + bool + the kernel's bias in c bytes [B, 1, L, T];
'splash' neither (causal and segment ids inside the kernel).
A ViT that trains (not frozen) also keeps every layer's forward for its backward.
Inference: weights in the compute dtype + the KV cache 2 x layers x [B, T, KV, hd] x c,
T = prompt + answer + visual tokens (680 at 256 px), + the prefill peak (one layer's
forward over the prompt, scores [B, H, P, T] x (8 + c), the mask, two gathered layers)
or the ViT / VQ-VAE decode if larger.

FLOPs per optimizer step (model FLOPs, what MFU counts):
  LLM 6 x P_llm x batch x L (P_llm: decoder + head, not the embedding table); attention
  12 x layers x L^2 x D x batch (the full L x L scores, as our attention computes them);
  projectors 6 x P x their tokens (mlp1: 256 per tile, word_embed: 679 per mask); the
  ViT forward (2 x P_vit x n + 4 x layers x n^2 x C) per tile when it is frozen, 3 x that
  (with its backward) when it trains. Remat adds one more LLM forward (2 x P_llm x tokens +
  4 x layers x L^2 x D per sample). The VQ-VAE encode (0.21 TFLOP per 256 px mask by XLA
  cost analysis, < 0.1 %) is not counted.
"""

import argparse
import dataclasses
import math
import re
import sys

import jax
import ml_collections
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from argenseg_jax import sharding, user_input
from argenseg_jax.checkpoints import conversion
from argenseg_jax.layers import attention as attention_lib
from argenseg_jax.models import internlm2
from argenseg_jax.models.argenseg import LOSS_CHUNK
from argenseg_jax.models.var_vqvae import num_tokens
from argenseg_jax.sharding_dump import abstract_model, load_config
from argenseg_jax.training import train_state


@dataclasses.dataclass(frozen=True)
class Device:
  name: str
  memory: float        # bytes of accelerator memory
  peak_flops: float    # dense bf16 FLOP/s (0: unknown)


DEVICES = {
    'v5p': Device('TPU v5p', 95e9, 459e12), 'v5e': Device('TPU v5e', 16e9, 197e12),
    'v4': Device('TPU v4', 32e9, 275e12), 'h100': Device('H100', 80e9, 989e12),
    'h200': Device('H200', 141e9, 989e12), 'a100': Device('A100', 80e9, 312e12),
}


@dataclasses.dataclass(frozen=True)
class Recipe:
  master: int     # bytes of the f32 master copy of a trainable parameter (0: none)
  compute: int    # bytes of a parameter / activation element as computed
  frozen: int     # bytes of a frozen parameter element
  grad: int       # bytes of a gradient element (before accumulation)


RECIPES = {'mixed': Recipe(master=4, compute=2, frozen=4, grad=4),
           'f32': Recipe(master=0, compute=4, frozen=4, grad=4)}
ADAM_BYTES = 8          # mu + nu, f32
ACCUM_BYTES = 4         # f32 gradient accumulator
TIGHT = 0.9             # above this fraction of device memory: TIGHT


def device(spec: str) -> Device:
  """`'v5p'` (see DEVICES), or an explicit size `'80GB'` / `'16GiB'`."""
  if spec.lower() in DEVICES:
    return DEVICES[spec.lower()]
  m = re.fullmatch(r'(\d+(?:\.\d+)?)\s*(GB|GiB)', spec.strip(), re.IGNORECASE)
  if not m:
    raise ValueError(f'unknown device {spec!r}: use one of {", ".join(DEVICES)} or a '
                     "size such as '80GB' or '16GiB'.")
  unit = 2 ** 30 if m.group(2).lower() == 'gib' else 1e9
  if float(m.group(1)) <= 0:
    raise ValueError(f'device memory must be more than 0, got {spec!r}.')
  return Device(spec.strip(), float(m.group(1)) * unit, 0.0)


@dataclasses.dataclass(frozen=True)
class Plan:
  """Bytes per device by component, FLOPs per step (global) and the setting."""
  setting: str
  device: Device
  num_devices: int
  memory: dict[str, float]
  flops: dict[str, float]

  @property
  def total(self) -> float:
    return sum(self.memory.values())

  @property
  def status(self) -> str:
    frac = self.total / self.device.memory
    return 'OVER' if frac > 1 else 'TIGHT' if frac > TIGHT else 'OK'

  @property
  def fits(self) -> bool:
    return self.total <= self.device.memory


def _mesh(mesh_shape: str | dict[str, int]) -> jax.sharding.AbstractMesh:
  if not isinstance(mesh_shape, str):
    mesh_shape = ','.join(f'{k}={v}' for k, v in mesh_shape.items())
  return sharding.abstract_mesh(**sharding.parse_mesh(mesh_shape))


def _shard_elems(shape, spec: PartitionSpec, mesh) -> int:
  return math.prod(NamedSharding(mesh, spec).shard_shape(tuple(shape)))


def _without_fsdp(spec: PartitionSpec) -> PartitionSpec:
  def drop(entry):
    axes = tuple(a for a in sharding.spec_axes(entry) if a != 'fsdp')
    return None if not axes else axes[0] if len(axes) == 1 else axes
  return PartitionSpec(*(drop(e) for e in spec))


def param_table(model: nnx.Module, mesh) -> dict[str, tuple[tuple, PartitionSpec]]:
  """`{path: (shape, mesh PartitionSpec)}` of every parameter."""
  shapes = conversion.flatten(nnx.to_pure_dict(nnx.state(model)))
  specs = conversion.flatten(nnx.to_pure_dict(sharding.param_specs(model, mesh)))
  return {k: (tuple(v.shape), specs[k]) for k, v in shapes.items()}


def param_memory(table: dict, mesh, recipe: Recipe, *, training: bool = True,
                 grad_accum: int = 1,
                 frozen: tuple[str, ...] = train_state.FROZEN_PARTS) -> dict[str, float]:
  """Bytes per device of parameters, gradients and AdamW state (training), or of the
  weights in the compute dtype (inference), from `param_table`; `frozen`: the train
  config's frozen parts (ValueError for one that names no parameter)."""
  frozen = train_state.check_frozen_parts([k.split('/') for k in table], frozen)
  train = froz = 0
  for path, (shape, spec) in table.items():
    n = _shard_elems(shape, spec, mesh)
    if train_state.is_frozen(path.split('/'), frozen):
      froz += n
    else:
      train += n
  if not training:
    return {'weights': (train + froz) * recipe.compute}
  grad = recipe.grad + (ACCUM_BYTES if grad_accum > 1 else 0)
  return {'params trainable': train * (recipe.master + recipe.compute),
          'params frozen': froz * recipe.frozen,
          'gradients': train * grad,
          'optimizer (AdamW)': train * ADAM_BYTES}


def _count(table: dict, prefix: str, exclude: str | None = None) -> int:
  return sum(math.prod(s) for k, (s, _) in table.items()
             if k.startswith(prefix) and not (exclude and k.startswith(exclude)))


def _gathered(table: dict, prefix: str, mesh, nbytes: int) -> float:
  """Bytes per device of the parameters under `prefix` all-gathered over fsdp."""
  return nbytes * sum(_shard_elems(s, _without_fsdp(p), mesh)
                      for k, (s, p) in table.items() if k.startswith(prefix))


def plan(config, mesh_shape, *, batch: int, seq_len: int, device_memory: str,
         training: bool = True, grad_accum: int = 1, prompt_len: int | None = None,
         answer_len: int = 32, tiles: int = 1, masks: int = 1, recipe: str = 'mixed',
         remat: bool = True, attention: str | None = None,
         frozen: tuple[str, ...] = train_state.FROZEN_PARTS) -> Plan:
  """Plan of `config` (ARGenSeg spec or ConfigDict) on `mesh_shape` ('data=1,fsdp=4,
  tensor=2' or a dict): training with a global `batch` of `seq_len`-token samples per
  optimizer step in `grad_accum` micro-steps (`tiles` 448-px tiles and `masks` masks
  per sample), or inference of `batch` rows with `prompt_len`-token prompts (default
  `seq_len`) and `answer_len` text tokens. `device_memory`: a DEVICES name or '80GB';
  `frozen`: the parts that do not train (the train config's `frozen`); `attention`: the
  kernel (`layers/attention.py`; default the config's `llm.attention`)."""
  if recipe not in RECIPES:
    raise ValueError(f'recipe must be one of {", ".join(RECIPES)}, got {recipe!r}.')
  if min(batch, seq_len, grad_accum, tiles, masks) < 1:
    raise ValueError('batch, seq_len, grad_accum, tiles and masks must be >= 1.')
  dev, rec = device(device_memory), RECIPES[recipe]
  mesh = _mesh(mesh_shape)
  batch_shards = mesh.shape['data'] * mesh.shape['fsdp']
  if training and (batch % grad_accum or (batch // grad_accum) % batch_shards):
    raise ValueError(f'global batch {batch} in {grad_accum} micro-steps does not split '
                     f'evenly over data x fsdp = {batch_shards} batch shards; choose batch '
                     'a multiple of grad_accum x data x fsdp (put extra chips on tensor).')
  cfg = load_config(config)
  table = param_table(abstract_model(cfg), mesh)
  frozen = train_state.check_frozen_parts([k.split('/') for k in table], frozen)
  b = batch // grad_accum if training else batch
  length = seq_len if training else (prompt_len or seq_len)
  visual = num_tokens(tuple(cfg.vqvae.patch_nums))
  attention = attention or cfg.llm.get('attention', 'xla')
  attention_lib.check(attention)
  # splash runs whole sequences from an empty cache only: the sampler's passes run xla
  runs = 'xla' if attention == 'splash' and not training else attention
  act = Activations(cfg, mesh, rec.compute, runs)
  c = rec.compute

  memory = param_memory(table, mesh, rec, training=training, grad_accum=grad_accum,
                        frozen=frozen)
  layer_weights = 2 * _gathered(table, 'language_model/layers/', mesh, c) / (
      cfg.llm.num_hidden_layers)  # one layer of each stacked parameter
  frozen_peak = max(act.vit(b * tiles), act.vqvae(b * masks))
  vit_trains = training and any(not train_state.is_frozen(k.split('/'), frozen)
                                for k in table if k.startswith('vision/vision_model/'))
  if training:
    fwd = act.layer(b, length)
    saved = act.attn_bias(b, length, length) + (
        (cfg.llm.num_hidden_layers + 1) * act.resid(b, length) if remat else
        cfg.llm.num_hidden_layers * (fwd + act.scores(b, length, length) * (4 + c))
        + act.resid(b, length))
    layer = 2 * fwd + act.scores(b, length, length) * (12 + c) + layer_weights
    chunk = min(length - 1, cfg.get('loss_chunk', LOSS_CHUNK))
    loss = 3 * act.logits(b, chunk) + _gathered(table, 'language_model/output', mesh, c)
    memory['activations saved' + (' (remat)' if remat else '')] = saved
    if vit_trains:  # every ViT layer's forward kept for its backward (no remat there)
      memory['ViT activations saved (trains)'] = (cfg.image.vision.num_hidden_layers
                                                  * act.vit(b * tiles))
    memory['activations transient'] = max(layer, loss, frozen_peak)
  else:
    cache = length + answer_len + visual
    memory['KV cache'] = 2 * cfg.llm.num_hidden_layers * act.kv(b, cache)
    prefill = (act.layer(b, length) + act.scores(b, length, cache) * (8 + c)
               + act.attn_bias(b, length, cache) + layer_weights)
    memory['activations transient'] = max(prefill, frozen_peak)

  flops = _flops(cfg, table, batch, length, training, remat, tiles, masks, answer_len,
                 visual, vit_trains)
  ax = mesh.shape
  setting = (f"{'training' if training else 'inference'} of {cfg.name} "
             f"(llm {cfg.llm.num_hidden_layers}x{cfg.llm.hidden_size}), mesh data={ax['data']} "
             f"fsdp={ax['fsdp']} tensor={ax['tensor']}, recipe {recipe}, ")
  if training:
    setting += (f'global batch {batch} x {length} tokens in {grad_accum} micro-step(s) = '
                f'{b // batch_shards} sample(s) per device per micro-step, '
                f"remat {'on' if remat else 'off'}, ")
  else:
    setting += (f'{batch} rows, prompt {length} + answer {answer_len} + {visual} visual '
                'tokens, ')
  setting += f'{runs} attention, {tiles} tile(s)'
  if training:
    setting += f", frozen: {', '.join(frozen) or 'nothing'}"
  return Plan(setting, dev, mesh.size, memory, flops)


class Activations:
  """Bytes per device of the activation arrays, each sharded by `ACT_RULES`."""

  def __init__(self, cfg: ml_collections.ConfigDict, mesh, nbytes: int, attention: str):
    self.cfg, self.mesh, self.c, self.attention = cfg, mesh, nbytes, attention

  def _bytes(self, shape, names, nbytes) -> float:
    spec = sharding.mesh_spec(names, shape, self.mesh, sharding.ACT_RULES)
    return _shard_elems(shape, spec, self.mesh) * nbytes

  def resid(self, b, length):
    return self._bytes((b, length, self.cfg.llm.hidden_size), internlm2.RESIDUAL, self.c)

  def layer(self, b, length):
    """One decoder layer's forward intermediates over `length` new tokens (without the
    scores, see `scores`)."""
    llm = self.cfg.llm
    full = self._bytes((b, length, llm.hidden_size), ('act_batch', 'act_len', None), self.c)
    q = self._bytes((b, length, llm.num_attention_heads, llm.head_dim), internlm2.QUERIES,
                    self.c)
    kv = self._bytes((b, length, llm.num_key_value_heads, llm.head_dim), internlm2.KEYS,
                     self.c)
    mlp = self._bytes((b, length, llm.intermediate_size), internlm2.HIDDEN_MLP, self.c)
    return 6 * full + 3 * q + 3 * kv + 4 * mlp

  def scores(self, b, length, keys):
    """Elements (not bytes) per device of one layer's `[B, H, L, T]` scores (none in a
    fused kernel)."""
    if self.attention in attention_lib.FUSED:
      return 0
    return self._bytes((b, self.cfg.llm.num_attention_heads, length, keys),
                       ('act_batch', 'act_heads', None, None), 1)

  def attn_bias(self, b, length, keys):
    """The attention mask `[B, 1, L, T]`: f32 for XLA, + a bool copy and the kernel's
    own bias for cuDNN, none for splash."""
    per_element = {'xla': 4, 'cudnn': 4 + 1 + self.c, 'splash': 0}[self.attention]
    return self._bytes((b, 1, length, keys), ('act_batch', None, None, None), per_element)

  def kv(self, b, size):
    llm = self.cfg.llm
    return self._bytes((b, size, llm.num_key_value_heads, llm.head_dim), internlm2.KEYS,
                       self.c)

  def logits(self, b, length):
    """f32 logits over the padded vocabulary."""
    vocab = internlm2.padded_vocab_size(self.cfg.llm.vocab_size)
    return self._bytes((b, length, vocab), internlm2.LOGITS, 4)

  def vit(self, tiles):
    """One InternViT layer's forward over `tiles` tiles, plus pixel shuffle + mlp1."""
    v = self.cfg.image.vision
    n = 1 + (v.image_size // v.patch_size) ** 2
    tok = ('act_batch', None, None)
    return (6 * self._bytes((tiles, n, v.hidden_size), tok, self.c)
            + 2 * self._bytes((tiles, n, v.intermediate_size), ('act_batch', None, 'act_mlp'),
                              self.c)
            + 2 * self._bytes((tiles, v.num_attention_heads, n, n),
                              ('act_batch', 'act_heads', None, None), 4)
            + self._bytes((tiles, (n - 1) // 4, 4 * v.hidden_size), tok, self.c)
            + 2 * self._bytes((tiles, (n - 1) // 4, self.cfg.llm.hidden_size), tok, self.c))

  def vqvae(self, masks):
    """Six f32 feature maps at the VQ-VAE's full resolution and first width."""
    q = self.cfg.vqvae
    return 6 * self._bytes((masks, q.resolution, q.resolution, q.ch * q.ch_mult[0]),
                           ('act_batch', None, None, None), 4)


def _flops(cfg, table, batch, length, training, remat, tiles, masks, answer_len,
           visual, vit_trains) -> dict[str, float]:
  """Global FLOPs per optimizer step (training) or per batch of requests (inference)."""
  llm, v = cfg.llm, cfg.image.vision
  p_llm = _count(table, 'language_model/', exclude='language_model/tok_embeddings')
  p_vit = _count(table, 'vision/vision_model/')
  n = 1 + (v.image_size // v.patch_size) ** 2
  attn_fwd = 4 * llm.num_hidden_layers * llm.hidden_size   # x L x T per sample
  vit = batch * tiles * (2 * p_vit * n + 4 * v.num_hidden_layers * n * n * v.hidden_size)
  if not training:
    cache = length + answer_len + visual
    new = answer_len + visual
    return {'LLM prefill': batch * (2 * p_llm * length + attn_fwd * length * cache),
            'LLM decode': batch * new * (2 * p_llm + attn_fwd * cache),
            'ViT forward (frozen)': vit}
  tokens = batch * length
  proj = 6 * (_count(table, 'vision/mlp1/') * batch * tiles * (n - 1) // 4
              + _count(table, 'word_embed/') * batch * masks * (visual - 1))
  out = {'LLM 6*P*tokens': 6 * p_llm * tokens,
         'LLM attention 12*N*L^2*D': 3 * attn_fwd * length * length * batch,
         'projectors': proj}
  if vit_trains:
    out['ViT forward + backward'] = 3 * vit
  else:
    out['ViT forward (frozen)'] = vit
  if remat:
    out['remat recompute (not in MFU)'] = 2 * p_llm * tokens + attn_fwd * length * length * batch
  return out


def _gb(x: float) -> str:
  return f'{x / 1e9:9.2f} GB'


def format_plan(p: Plan, mfu: float = 0.4) -> str:
  """A readable table: memory per device with OK / TIGHT / OVER, FLOPs and step time."""
  lines = [p.setting, f'{p.num_devices} x {p.device.name} ({p.device.memory / 1e9:.1f} GB)', '',
           'memory per device']
  lines += [f'  {k:32s}{_gb(v)}' for k, v in p.memory.items()]
  lines.append(f"  {'total':32s}{_gb(p.total)}  = {100 * p.total / p.device.memory:.0f} % "
               f'of {p.device.memory / 1e9:.1f} GB  {p.status}')
  lines += ['', 'FLOPs (global)']
  lines += [f'  {k:32s}{v:12.3e}' for k, v in p.flops.items()]
  model = sum(v for k, v in p.flops.items() if 'not in MFU' not in k)
  lines.append(f"  {'model FLOPs':32s}{model:12.3e}  = {model / p.num_devices:.3e} per device")
  if p.device.peak_flops:
    seconds = model / (p.num_devices * p.device.peak_flops * mfu)
    lines.append(f'  time at {100 * mfu:.0f} % MFU ({p.device.peak_flops / 1e12:.0f} TFLOP/s '
                 f'bf16 peak): {seconds:.2f} s')
  return '\n'.join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The `argenseg plan` arguments (also `python -m argenseg_jax.plan`)."""
  parser.add_argument('--config', default='argenseg:variant=8b', help='ARGenSeg config spec')
  parser.add_argument('--mesh', required=True,
                      help='mesh sizes, e.g. data=1,fsdp=64,tensor=1 (any size: no devices '
                      'are needed)')
  parser.add_argument('--device', required=True,
                      help=f'{", ".join(DEVICES)} or a memory size such as 80GB / 16GiB')
  parser.add_argument('--batch', type=int, required=True,
                      help='global batch per optimizer step (inference: rows)')
  parser.add_argument('--seq-len', type=int, default=8192, help='tokens per sample')
  parser.add_argument('--grad-accum', type=int, default=1, help='micro-steps per step')
  parser.add_argument('--inference', action='store_true', help='plan generation instead')
  parser.add_argument('--prompt-len', type=int, help='inference prompt tokens (default '
                      '--seq-len)')
  parser.add_argument('--answer-len', type=int, default=32, help='inference text tokens')
  parser.add_argument('--tiles', type=int, default=1, help='448-px tiles per sample')
  parser.add_argument('--masks', type=int, default=1, help='masks per sample')
  parser.add_argument('--recipe', choices=sorted(RECIPES), default='mixed')
  parser.add_argument('--no-remat', dest='remat', action='store_false',
                      help='keep every layer\'s activations (default: remat each layer)')
  parser.add_argument('--attention', choices=attention_lib.IMPLEMENTATIONS,
                      help="the attention kernel (default the config's llm.attention): xla "
                      'holds the [L, L] scores; cudnn (GPU) and splash (TPU) do not')
  parser.add_argument('--mfu', type=user_input.fraction, default=0.4,
                      help='model FLOPs utilisation in (0, 1], for the step-time estimate')
  parser.add_argument('--frozen', type=lambda text: tuple(filter(None, text.split(','))),
                      default=train_state.FROZEN_PARTS,
                      help='comma-separated frozen parts, as the train config\'s frozen '
                      f'(default {",".join(train_state.FROZEN_PARTS)}; \'\' = nothing frozen)')


def run(args: argparse.Namespace) -> int:
  """Prints the plan; exit status 1 when it does not fit."""
  p = plan(args.config, args.mesh, batch=args.batch, seq_len=args.seq_len,
           device_memory=args.device, training=not args.inference, grad_accum=args.grad_accum,
           prompt_len=args.prompt_len, answer_len=args.answer_len, tiles=args.tiles,
           masks=args.masks, recipe=args.recipe, remat=args.remat,
           attention=args.attention, frozen=args.frozen)
  print(format_plan(p, args.mfu))
  return 0 if p.fits else 1


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='argenseg plan', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  add_arguments(parser)
  args = parser.parse_args(argv)
  try:
    return run(args)
  except (FileNotFoundError, ValueError) as e:
    print(f'argenseg plan: error: {e}', file=sys.stderr)
    return 2


if __name__ == '__main__':
  sys.exit(main())
