"""ARGenSeg-8B on one accelerator: seconds per mask, masks/s and where the time goes; then
the train step of a ~2B model of the same architecture: tokens/s and MFU.

  python benchmarks/accelerator.py [--json accelerator.json] [--overwrite] [--reps 3]
  python benchmarks/accelerator.py --small   # the same code at tiny sizes, on CPU

Inference: random bf16 weights of ARGenSeg-8B (`argenseg:variant=8b`), built on the
device by one compiled program; per row a 640x480 image and a referring question through
`Segmenter.segment` (greedy, `SamplerConfig` defaults), at batch 1, 8 and 32. The
tokenizer is byte-level with the 8B's special-token ids, so the prompt is longer than
InternLM2's tokenizer would make it (its length is printed). Random weights would answer
arbitrary tokens, so `program_answer` sets the answer in the weights: no layer writes the
first few residual dimensions, which so keep the input token's embedding, and the final
norm and the head read only those, so each token picks the next: `Result:`, the mask,
`.`, eos (10 decoding steps, like the released model's 'Sure, the segmentation result:
<mask>.'). The shapes, and so the work, are the 8B's.

Split of a call: the sampler's prefill (ViT + prompt), the 10 scale passes and the
answer's text steps, each its own program (the last two on a fresh prefilled cache,
donated as `generate` updates it in place); the VQ-VAE decode as `Segmenter` runs it (one
call per mask; one batched call for comparison); the rest (host: template, image and
mask resizing; the decoding loop) is end to end minus those. Raster (batch 1): the mask
passes with `SamplerConfig(raster=True)`, 680 one-token passes, against the scale passes,
and end to end with the raster passes in place of the scale passes. Inference MFU
counts `argenseg plan`'s inference FLOPs; so does "masks/s at 100 % of peak", the
ceiling that the FLOPs alone allow.

Training: InternVL2.5-2B's shapes (InternViT-300M, frozen; InternLM2.5-1.8B: 24 layers x
2048, 16 / 8 heads, MLP 8192) with ARGenSeg's vocabulary, slot embeddings and frozen
VQ-VAE; the bf16 mixed recipe with remat; 4096-token samples (one tile, one mask, text
to the end); the largest batch of 16, 8, 4, 2, 1 that `argenseg plan` puts within 85 % of
the device's memory (the next one on an out-of-memory error). MFU = the plan's model
FLOPs / (step time x the device's bf16 peak in `plan.DEVICES`; n/a for other devices).

Compile = first call minus the median call. Peak memory: the device's
`peak_bytes_in_use` after each part (n/a without memory stats, e.g. on CPU). Goals,
judged on accelerators only: <= 0.15 s per mask at batch 1, >= 100 masks/s at batch 32,
train MFU >= 45 %. `--small` runs `argenseg:variant=tiny` (its VQ-VAE cut to two levels)
at batch 1 and 2 and a 256-token train step, one timed call each, with XLA's CPU
optimisations off: it checks the code in 1-2 minutes on 2 cores; its figures are not for
comparison.
"""

import argparse
import dataclasses
import functools
import gc
import json
import math
import os
import pathlib
import re
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from PIL import Image
from timing import time_call

from argenseg_jax import chat_template, plan
from argenseg_jax.checkpoints import conversion, params
from argenseg_jax.config_args import load_config
from argenseg_jax.example_spec import spec_for
from argenseg_jax.image_transforms import image_to_pixels
from argenseg_jax.models import argenseg_io
from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.models.var_vqvae import num_tokens
from argenseg_jax.sampler import SamplerConfig, mask_pass, prefill, text_step
from argenseg_jax.segmenter import Segmenter
from argenseg_jax.sharding import make_mesh
from argenseg_jax.sharding_dump import abstract_model
from argenseg_jax.tokenizer import ByteTokenizer, Tokenizer, scratch_tokenizer
from argenseg_jax.training import defaults, optimizer, train_state, train_step
from data_pipelines.train_pipeline import pad_batch

ONE_DEVICE = 'data=1,fsdp=1,tensor=1'
QUESTION = chat_template.Referring(('the person on the left',))
ANSWER = 'Result:'  # distinct bytes: each token of the answer has one successor
FILLER = 'The person stands on the left, in a dark coat, next to a bicycle. '
# InternLM2.5-1.8B, the LLM of InternVL2.5-2B
LLM_2B = dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
              num_attention_heads=16, num_key_value_heads=8, head_dim=128)
# device kind (lower case) -> `plan.DEVICES` key; the first match counts
PEAK_KINDS = (('h100', 'h100'), ('h200', 'h200'), ('a100', 'a100'), ('tpu v5 lite', 'v5e'),
              ('tpu v5e', 'v5e'), ('tpu v5', 'v5p'), ('tpu v4', 'v4'))
START = time.perf_counter()
GOALS = {'seconds_per_mask_batch1': ('<=', 0.15, 'batch 1 <= 0.15 s'),
         'masks_per_s_batch32': ('>=', 100.0, 'batch 32 >= 100'),
         'train_mfu': ('>=', 0.45, '>= 45 %')}


@dataclasses.dataclass(frozen=True)
class Sizes:
  config: str                       # the ARGenSeg config of both parts
  vqvae: dict                       # overrides of its VQ-VAE
  batches: tuple[int, ...]          # inference, 1 first
  split_batches: tuple[int, ...]    # those timed stage by stage too (1 among them)
  image: tuple[int, int]            # (W, H) of the input image
  train_llm: dict                   # overrides of its LLM for training
  seq_len: int
  train_batches: tuple[int, ...]    # the largest that the plan fits is used
  reps: int


FULL = Sizes('argenseg:variant=8b', {}, (1, 8, 32), (1, 32), (640, 480), LLM_2B, 4096,
             (16, 8, 4, 2, 1), 3)
# two VQ-VAE levels of one block at 8 px: the tiny one's five levels take longest to compile
SMALL = Sizes('argenseg:variant=tiny', dict(ch_mult=(1, 2), num_res_blocks=1, resolution=8),
              (1, 2), (1, 2), (80, 60), {}, 256, (2,), 1)


def log(message: str) -> None:
  """Progress on stderr, with the seconds since the start."""
  print(f'[{time.perf_counter() - START:6.1f} s] {message}', file=sys.stderr, flush=True)


def _num(x, unit: str = '', digits: int = 4) -> str:
  return 'n/a' if x is None else f'{x:.{digits}g}{unit}'


def _pct(x) -> str:
  return 'n/a' if x is None else f'{100 * x:.1f} %'


def _gb(x) -> str:
  return 'n/a' if x is None else f'{x / 1e9:.2f} GB'


def _params(n: int) -> str:
  return f'{n / 1e9:.2f} B' if n >= 1e8 else f'{n / 1e6:.1f} M'


def device_peak() -> tuple[str | None, float | None]:
  """(`plan.DEVICES` key, bf16 peak FLOP/s) of device 0, or (None, None) when not listed
  (PCIe cards run below the SXM peaks listed there)."""
  kind = jax.devices()[0].device_kind.lower()
  if 'pcie' not in kind:
    for pattern, key in PEAK_KINDS:
      if pattern in kind:
        return key, plan.DEVICES[key].peak_flops
  return None, None


def memory_stat(name: str) -> int | None:
  """A figure of device 0's `memory_stats()`, None where the backend has none."""
  stats = jax.devices()[0].memory_stats()
  return stats.get(name) if stats else None


def model_flops(p: plan.Plan) -> float:
  """The plan's FLOPs that MFU counts (as `plan.format_plan` sums them)."""
  return sum(v for k, v in p.flops.items() if 'not in MFU' not in k)


def chat_tokenizer(cfg) -> Tokenizer:
  """The config's own tokenizer (models trained from scratch) or, for the released
  vocabulary, a byte-level one with its special-token ids."""
  if cfg.get('added_tokens'):
    return scratch_tokenizer(cfg)
  first = cfg.tokens.img_context_token_id - argenseg_io.INTERNVL_TOKENS.index('<IMG_CONTEXT>')
  return ByteTokenizer({'<|im_end|>': first - 2, '<|im_start|>': first - 1,
                        **argenseg_io.added_token_ids(first)})


def answer_edges(tok: Tokenizer, cfg, last_prompt_id: int):
  """(`[(token, next token)]` of the programmed answer, the answer's ids as `Segmenter`
  returns them: the mask appears as its `<ge_end>`)."""
  t = cfg.tokens
  text, tail = tok.encode(ANSWER), [t.gen_end_token_id, *tok.encode('.'),
                                    tok.token_id('<|im_end|>')]
  lead = [last_prompt_id, *text, t.gen_start_token_id]
  edges = list(zip(lead, lead[1:])) + list(zip(tail, tail[1:]))
  if len({a for a, _ in edges}) != len(edges):
    raise ValueError(f'a token of {ANSWER!r} has two successors.')
  return edges, text + tail


def program_answer(state: nnx.State, edges) -> nnx.State:
  """`state` whose LLM answers by `edges`: residual dimension i holds 1 in the embedding
  of the i-th source token; no layer writes dimensions < len(edges) (`wo`, `w2`); the
  final norm keeps only those and the head maps dimension i to the i-th target."""
  k = len(edges)
  src, dst = (jnp.asarray(x) for x in zip(*edges))
  dims = jnp.arange(k)
  flat = conversion.flatten(nnx.to_pure_dict(state))
  writes = [key for key in flat if re.fullmatch(r'language_model/layers/.*/(wo|w2)', key)]
  if not writes:
    raise ValueError('no language_model/layers/.../wo or w2 parameters to program.')
  for key in writes:
    flat[key] = flat[key].at[..., :k].set(0)
  lm = 'language_model/'
  embed = flat[lm + 'tok_embeddings/embedding']
  flat[lm + 'tok_embeddings/embedding'] = embed.at[:, :k].set(0).at[src, dims].set(1)
  flat[lm + 'norm/weight'] = jnp.zeros_like(flat[lm + 'norm/weight']).at[:k].set(1)
  flat[lm + 'output'] = jnp.zeros_like(flat[lm + 'output']).at[dims, dst].set(1)
  nnx.replace_by_pure_dict(state, conversion.unflatten(flat, nnx.to_pure_dict(state)))
  return state


def init_bf16(cfg, edges):
  """`(graphdef, state, compile s, run s)`: random bf16 weights answering by `edges`,
  built on the default device by one compiled program (no f32 copy leaves it)."""
  graphdef = nnx.graphdef(abstract_model(cfg))

  def build():
    state = jax.tree.map(lambda x: x.astype(jnp.bfloat16) if jnp.issubdtype(
        x.dtype, jnp.floating) else x, nnx.state(ARGenSeg(cfg, params.init_rngs(0))))
    return program_answer(state, edges)
  t0 = time.perf_counter()
  compiled = jax.jit(build).lower().compile()
  t1 = time.perf_counter()
  state = jax.block_until_ready(compiled())
  return graphdef, state, t1 - t0, time.perf_counter() - t1


def stage_programs(graphdef, scfg: SamplerConfig, gen_start: int):
  """The sampler's stages as programs: `prefill(state, ids, mask, pixels, flags) ->
  (logits, start, cache)` into `generate`'s cache; `passes(state, cache, start, raster)
  -> (codes, cache)`, the 10 scale passes (or the 680 raster steps); `text(state, logits,
  cache, start, steps) -> (logits, cache)`, `steps` greedy text steps. The last two take
  the cache donated, as `generate` updates it in place."""
  def prefill_run(state, ids, mask, pixels, flags):
    m = nnx.merge(graphdef, state)
    size = ids.shape[1] + scfg.max_new_tokens + num_tokens(m.patch_nums) * scfg.mask_passes
    _, positions, logits, cache = prefill(m, ids, mask, pixels, flags, size)
    return logits, positions[:, -1] + 1, cache

  def passes_run(state, cache, start, raster):
    b = start.shape[0]
    res = mask_pass(nnx.merge(graphdef, state), jnp.full((b,), gen_start), start,
                    jnp.ones((b,), bool), cache, dataclasses.replace(scfg, raster=raster),
                    jax.random.key(0))
    return jnp.concatenate(res.codes, axis=1), res.cache

  def text_run(state, logits, cache, start, steps):
    m = nnx.merge(graphdef, state)
    active = jnp.ones(start.shape, bool)

    def step(i, carry):
      token = jnp.argmax(carry[0], axis=-1).astype(jnp.int32)
      return text_step(m, token, start + i, active, carry[1])
    return jax.lax.fori_loop(0, steps, step, (logits, cache))
  return (jax.jit(prefill_run), jax.jit(passes_run, static_argnums=3, donate_argnums=1),
          jax.jit(text_run, static_argnums=4, donate_argnums=2))


def time_on_cache(fn, fresh_cache, reps: int) -> tuple[float, float]:
  """`time_call` of `fn(cache)` with a new cache (`fresh_cache()`, untimed) per call."""
  times = []
  for _ in range(reps + 1):
    cache = jax.block_until_ready(fresh_cache())
    t0 = time.perf_counter()
    jax.block_until_ready(fn(cache))
    times.append(time.perf_counter() - t0)
  return times[0], statistics.median(times[1:])


def sampler_inputs(seg: Segmenter, prompt: list[int], image: Image.Image, b: int):
  """`b` copies of the prompt and tile as `Segmenter` pads them for the sampler."""
  width = -(-len(prompt) // seg.bucket) * seg.bucket
  ids = np.array([[seg.sampler_config.pad_token_id] * (width - len(prompt)) + prompt] * b,
                 np.int32)
  mask = np.array([[False] * (width - len(prompt)) + [True] * len(prompt)] * b)
  pixels = np.repeat(image_to_pixels(image, size=seg.spec.image_size), b, axis=0)
  return ids, mask, pixels, np.ones((b,), np.int32)


def segment_checked(seg: Segmenter, images, expected: list[int]):
  results = seg.segment(images, [QUESTION] * len(images))
  for r in results:
    if r.token_ids != expected or len(r.masks) != 1:
      raise SystemExit(f'the programmed answer did not come out: {r.token_ids} with '
                       f'{len(r.masks)} mask(s), expected {expected} with one.')
  return results


def measure_batch(seg: Segmenter, programs, prompt, image, expected, reps: int,
                  split: bool) -> dict:
  """Seconds per call of one batch end to end; with `split` also per stage, and at batch
  1 the raster passes (one timed call: 680 one-token passes are slow)."""
  b = seg.batch_size
  images = [image] * b
  e2e_first, e2e = time_call(segment_checked, seg, images, expected, reps=reps)
  row = dict(seconds_per_call=e2e, seconds_per_mask=e2e / b, masks_per_s=b / e2e,
             compile={'end_to_end': e2e_first - e2e})
  if not split:
    return row
  codes = np.stack([r.codes[0] for r in segment_checked(seg, images, expected)])
  prefill_fn, passes_fn, text_fn = programs
  inputs = sampler_inputs(seg, prompt, image, b)
  pre_first, pre = time_call(prefill_fn, seg.state, *inputs, reps=reps)
  logits, start, _ = prefill_fn(seg.state, *inputs)
  fresh = lambda: prefill_fn(seg.state, *inputs)[2]
  pass_first, passes = time_on_cache(lambda c: passes_fn(seg.state, c, start, False), fresh,
                                     reps)
  text_first, text = time_on_cache(
      lambda c: text_fn(seg.state, logits, c, start, len(expected)), fresh, reps)
  _, per_mask = time_call(lambda: [seg.decode_masks(c[None]) for c in codes], reps=reps)
  row['split'] = {'prefill': pre, 'scale_passes': passes, 'text_decode': text,
                  'vqvae_decode': per_mask}
  row['split']['rest'] = e2e - sum(row['split'].values())
  row['compile'].update(prefill=pre_first - pre, scale_passes=pass_first - passes,
                        text_decode=text_first - text)
  if b > 1:  # at batch 1 the per-mask program
    first, row['split']['vqvae_decode_batched'] = time_call(seg.decode_masks, codes, reps=reps)
    row['compile']['vqvae_decode_batched'] = first - row['split']['vqvae_decode_batched']
  else:
    first, raster = time_on_cache(lambda c: passes_fn(seg.state, c, start, True), fresh, 1)
    per_mask = e2e - passes + raster
    row['raster'] = dict(mask_passes=raster, compile=first - raster, seconds_per_mask=per_mask,
                         ratio_end_to_end=per_mask / e2e, ratio_mask_passes=raster / passes)
  return row


def model_config(sizes: Sizes, training: bool):
  """The ARGenSeg config of `sizes` with its VQ-VAE overrides, for training also its
  LLM overrides and remat."""
  cfg = load_config(sizes.config)
  cfg.vqvae.update(sizes.vqvae)
  if training:
    cfg.llm.update(sizes.train_llm)
    cfg.image.llm_hidden_size = cfg.llm.hidden_size
    cfg.llm.remat = True
  return cfg


def run_inference(sizes: Sizes, reps: int, peak_key: str | None, peak: float | None) -> dict:
  """The inference figures: every batch end to end, the split, raster, memory."""
  cfg = model_config(sizes, training=False)
  tok = chat_tokenizer(cfg)
  spec = spec_for(cfg)
  prompt = chat_template.prompt_ids(tok, QUESTION, tokens_per_tile=spec.image_tokens,
                                    system=spec.system_prompt, style=spec.question_style)
  edges, expected = answer_edges(tok, cfg, prompt[-1])
  graphdef, state, init_compile, init_run = init_bf16(cfg, edges)
  n_params = sum(x.size for x in jax.tree.leaves(state))
  log(f'{sizes.config}: {_params(n_params)} parameters in bf16, init compile '
      f'{init_compile:.1f} s + run {init_run:.1f} s')
  image = Image.fromarray(np.random.default_rng(0).integers(
      0, 256, (sizes.image[1], sizes.image[0], 3), np.uint8))
  out = dict(config=sizes.config, parameters=n_params, prompt_tokens=len(prompt),
             answer_tokens=len(expected), mask_tokens=spec.mask_tokens,
             image=list(sizes.image), compile_init=init_compile, batches={})
  # one Segmenter, its batch size set per batch: the per-mask VQ-VAE decode compiles once
  seg = Segmenter(nnx.merge(graphdef, state), cfg, tok, batch_size=sizes.batches[0])
  programs = stage_programs(graphdef, seg.sampler_config, cfg.tokens.gen_start_token_id)
  for b in sizes.batches:
    seg.batch_size = b
    row = measure_batch(seg, programs, prompt, image, expected, reps, b in sizes.split_batches)
    p = plan.plan(cfg, ONE_DEVICE, batch=b, seq_len=len(prompt), training=False,
                  answer_len=len(expected), device_memory=peak_key or '1GB')
    flops = model_flops(p)
    row.update(plan_flops=flops, mfu=flops / (row['seconds_per_call'] * peak) if peak else None,
               masks_per_s_at_peak=b * peak / flops if peak else None)
    out['batches'][str(b)] = row
    log(f'batch {b}: {row["seconds_per_mask"]:.4f} s per mask, {row["masks_per_s"]:.2f} masks/s')
  out['peak_bytes'] = memory_stat('peak_bytes_in_use')
  return out


def train_batch(cfg, tok: Tokenizer, batch: int, length: int) -> dict:
  """`batch` copies of a `length`-token sample: the referring question with one tile,
  the answer with one mask, then text to the end (a byte-level tokenizer: one token per
  character); random pixels, a rectangle mask."""
  spec = spec_for(cfg, length_buckets=(length,))

  def example(extra: str):
    turns = chat_template.referring_conversation([QUESTION.sentences[0]], spec.question_style)
    turns[1]['value'] += extra
    return chat_template.training_example(
        tok, turns, tokens_per_tile=spec.image_tokens, system=spec.system_prompt,
        mask_tokens=spec.mask_tokens, max_length=length)
  fill = length - len(example(' ').ids)
  ex = example(' ' + (FILLER * (fill // len(FILLER) + 1))[:fill])
  rng = np.random.default_rng(0)
  r, s = spec.mask_resolution, spec.image_size
  mask = np.full((1, r, r, 3), -1.0, np.float32)
  mask[:, r // 4:r // 2, r // 8:r // 2] = 1.0
  return pad_batch([dict(ids=ex.ids, labels=ex.labels, masks=mask,
                         pixels=rng.normal(size=(s, s, 3)).astype(np.float32),
                         image_flag=np.int32(1), mask_flags=np.ones((1,), np.int32))] * batch,
                   spec)


def train_steps(cfg, tok, batch: int, length: int, reps: int) -> dict:
  """Compile + first step and the median of `reps` more, on one device."""
  mesh = make_mesh(devices=jax.devices()[:1])
  config = defaults.base_config()
  tx = optimizer.make_optimizer(config.optimizer, 1000)
  ctor = functools.partial(ARGenSeg, cfg)
  lay = train_state.layout(ctor, tx, mesh, config.frozen)
  state = train_state.init_state(ctor, tx, lay, config.frozen)
  step = train_step.make_train_step(lay, tx, mesh, compute_dtype=jnp.bfloat16,
                                    schedule=optimizer.learning_rate(config.optimizer, 1000))
  data = train_step.global_batch(train_batch(cfg, tok, batch, length), mesh)
  times = []
  for _ in range(reps + 1):
    t0 = time.perf_counter()
    state, metrics = step(state, data)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
  if not math.isfinite(float(metrics['loss'])):
    raise SystemExit(f'train step: loss {float(metrics["loss"])}')
  step_s = statistics.median(times[1:])
  return dict(step_seconds=step_s, compile=times[0] - step_s, loss=float(metrics['loss']))


def out_of_memory(error: Exception) -> bool:
  return 'RESOURCE_EXHAUSTED' in str(error) or 'out of memory' in str(error).lower()


def run_training(sizes: Sizes, reps: int, peak_key: str | None, peak: float | None) -> dict:
  """The train step's figures at the largest batch that fits."""
  cfg = model_config(sizes, training=True)
  tok = chat_tokenizer(cfg)
  limit = memory_stat('bytes_limit')
  frozen = defaults.base_config().frozen
  plans = {b: plan.plan(cfg, ONE_DEVICE, batch=b, seq_len=sizes.seq_len, remat=True,
                        device_memory=peak_key or '1GB', frozen=frozen)
           for b in sizes.train_batches}
  batches = [b for b, p in plans.items() if limit is None or p.total <= 0.85 * limit]
  n_params = params.count(abstract_model(cfg))
  for b in batches or sizes.train_batches[-1:]:
    log(f'train: {_params(n_params)} parameters, batch {b} x {sizes.seq_len} '
        f'(plan: {_gb(plans[b].total)})')
    try:
      row = train_steps(cfg, tok, b, sizes.seq_len, reps)
      break
    except Exception as e:  # pylint: disable=broad-except
      if not out_of_memory(e) or b == sizes.train_batches[-1]:
        raise
      log(f'train: batch {b} is out of memory, trying the next one')
    gc.collect()  # after a failed try, its traceback (and state) gone
  tokens = b * sizes.seq_len
  flops = model_flops(plans[b])
  llm = cfg.llm
  row.update(config=f'{sizes.config} with LLM {llm.num_hidden_layers} x '
             f'{llm.hidden_size} (heads {llm.num_attention_heads} / '
             f'{llm.num_key_value_heads}, MLP {llm.intermediate_size}), ViT '
             f'{cfg.image.vision.num_hidden_layers} x {cfg.image.vision.hidden_size} frozen, '
             'bf16 mixed, remat', parameters=n_params, batch=b, seq_len=sizes.seq_len,
             tokens_per_s=tokens / row['step_seconds'], plan_flops=flops,
             plan_bytes=plans[b].total,
             mfu=flops / (row['step_seconds'] * peak) if peak else None,
             peak_bytes=memory_stat('peak_bytes_in_use'))
  return row


def goals(result: dict) -> dict:
  """Each goal: its value, its wording and whether it is met (None: no value)."""
  batches = result['inference']['batches']
  values = {'seconds_per_mask_batch1': batches['1']['seconds_per_mask'],
            'masks_per_s_batch32': batches['32']['masks_per_s'],
            'train_mfu': result['train']['mfu']}
  out = {}
  for name, (op, bound, text) in GOALS.items():
    v = values[name]
    met = None if v is None else v <= bound if op == '<=' else v >= bound
    out[name] = dict(value=v, goal=text, met=met)
  return out


SPLIT_NAMES = {'prefill': 'prefill (ViT + prompt)', 'scale_passes': 'the scale passes',
               'text_decode': 'the text steps', 'vqvae_decode': 'VQ-VAE decode, a call per mask',
               'rest': 'rest (host work, the loop)',
               'vqvae_decode_batched': 'VQ-VAE decode, one batched call'}
COMPILE_NAMES = {'end_to_end': 'end to end (first call)', 'prefill': 'prefill',
                 'scale_passes': 'scale passes', 'text_decode': 'text steps',
                 'vqvae_decode_batched': 'batched VQ-VAE decode'}


def table(result: dict) -> str:
  """The figures as one table: figure, value (per batch where it depends on it), goal."""
  inf, tr = result['inference'], result['train']
  g = result.get('goals', {})
  rows_by_batch = inf['batches'].values()
  batches = ' / '.join(inf['batches'])

  def goal(name):
    if name not in g:
      return ''
    met = g[name]['met']
    return f"{g[name]['goal']}: {'n/a' if met is None else 'met' if met else 'NOT met'}"

  def per_batch(key, fmt, part=None):  # '-': not measured at that batch
    cells = ((r.get(part, {}) if part else r).get(key, '-') for r in rows_by_batch)
    return ' / '.join(c if c == '-' else fmt(c) for c in cells)
  rows = [(f'seconds per mask, batch {batches}', per_batch('seconds_per_mask', _num),
           goal('seconds_per_mask_batch1')),
          (f'masks/s, batch {batches}', per_batch('masks_per_s', _num),
           goal('masks_per_s_batch32'))]
  rows += [(f'  {name}, s per call', per_batch(k, _num, 'split'), '')
           for k, name in SPLIT_NAMES.items()]
  rows += [('inference MFU (plan FLOPs)', per_batch('mfu', _pct), ''),
           ('masks/s at 100 % of peak (plan FLOPs)', per_batch('masks_per_s_at_peak', _num), '')]
  rows += [(f'compile, {name}, s', per_batch(k, lambda x: _num(x, '', 3), 'compile'), '')
           for k, name in COMPILE_NAMES.items()]
  r = inf['batches']['1']['raster']
  rows += [('raster, batch 1: mask passes, s', _num(r['mask_passes']), ''),
           ('raster / next-scale: mask passes', _num(r['ratio_mask_passes'], 'x', 3), ''),
           ('raster / next-scale: per mask end to end', _num(r['ratio_end_to_end'], 'x', 3),
            ''),
           ('compile, raster passes, s', _num(r['compile'], '', 3), ''),
           ('compile, init (bf16, on the device), s', _num(inf['compile_init'], '', 3), ''),
           ('peak device memory, inference', _gb(inf['peak_bytes']), ''),
           (f"train: s per step, batch {tr['batch']} x {tr['seq_len']}",
            _num(tr['step_seconds']), ''),
           ('train: tokens/s', _num(tr['tokens_per_s']), ''),
           ('train: MFU (plan FLOPs)', _pct(tr['mfu']), goal('train_mfu')),
           ('compile, train step, s', _num(tr['compile'], '', 3), ''),
           ('train: plan memory', _gb(tr['plan_bytes']), ''),
           ('peak device memory, process (after training)', _gb(tr['peak_bytes']), '')]
  width = max(len(f) for f, _, _ in rows)
  value = max(len(v) for _, v, _ in rows)
  lines = [f"{result['device']}, jax {result['jax']}",
           f"inference: {inf['config']}, bf16, {_params(inf['parameters'])} parameters; "
           f"prompt {inf['prompt_tokens']} tokens, answer {inf['answer_tokens']} tokens + "
           f"one mask ({inf['mask_tokens']} codes), image {inf['image'][0]}x{inf['image'][1]}",
           f"train: {tr['config']}, {_params(tr['parameters'])} parameters", '',
           f"{'figure':<{width}}  {'value':>{value}}  goal", '-' * (width + value + 30)]
  lines += [f'{f:<{width}}  {v:>{value}}  {gl}'.rstrip() for f, v, gl in rows]
  return '\n'.join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--json', default='accelerator.json', help='where the figures go')
  parser.add_argument('--overwrite', action='store_true', help='replace an existing --json')
  parser.add_argument('--small', action='store_true',
                      help='the same code at tiny sizes (CPU, 1-2 minutes)')
  parser.add_argument('--reps', type=int, help='timed calls per figure (default 3, small 1)')
  args = parser.parse_args(argv)
  if args.reps is not None and args.reps < 1:
    parser.error(f'--reps must be >= 1, got {args.reps}.')
  out = pathlib.Path(args.json)
  if out.exists() and not args.overwrite:
    print(f'accelerator.py: error: {out} exists; give --overwrite or another --json.',
          file=sys.stderr)
    return 2
  if not out.parent.is_dir():
    print(f'accelerator.py: error: no directory {out.parent} for --json.', file=sys.stderr)
    return 2
  # before the backend starts: GPU memory as `launch/run_gpu.sh` gives it; --small checks
  # the code, its CPU figures are not for comparison: XLA's slow CPU optimisations off
  os.environ.setdefault('XLA_PYTHON_CLIENT_MEM_FRACTION', '0.92')
  if args.small:
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '')
                               + ' --xla_backend_optimization_level=0').strip()
  sizes = SMALL if args.small else FULL
  reps = args.reps or sizes.reps
  t0 = time.perf_counter()
  peak_key, peak = device_peak()
  result = dict(device=f'{jax.device_count()} x {jax.devices()[0].device_kind}',
                jax=jax.__version__, small=args.small, peak_flops=peak)
  result['inference'] = run_inference(sizes, reps, peak_key, peak)
  gc.collect()  # the 8B weights go before the train state comes
  result['train'] = run_training(sizes, reps, peak_key, peak)
  if not args.small:
    result['goals'] = goals(result)
  result['wall_seconds'] = time.perf_counter() - t0
  out.write_text(json.dumps(result, indent=1) + '\n')
  print(table(result))
  print(f"wall {result['wall_seconds']:.0f} s; figures in {out}")
  return 0


if __name__ == '__main__':
  sys.exit(main())
