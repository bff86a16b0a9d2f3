"""Seconds per mask, stage by stage, of the next-scale sampler vs the raster baseline.

  python benchmarks/sampler_bench.py [--config argenseg:variant=mid] [--batch 1,8]
                                     [--prompt 300] [--text 32] [--reps 2]

The model of `shared/reference/baseline.md` (random weights): InternLM2 8 x 1024,
InternViT 2 x 256, the real-structure VQ-VAE (ch 160). A 300-token prompt (`<s>`, text,
`<img>`, 256 `<IMG_CONTEXT>`, `</img>`, text) with one 448-px tile. Stages: prefill
(ViT + prompt), the 10 scale passes, the VQ-VAE decode of the final scale, all three
in one program (one mask end to end, slot 0 = `<ge_start>`), and the same 680 visual
tokens decoded one per forward pass (raster order), and `generate` writing `--text`
tokens of text after the prompt (no eos: the decode loop with its per-row state).
Prints compile times separately.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from timing import parse_args, random_model, time_call

from argenseg_jax import sampler
from argenseg_jax.checkpoints import params
from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.models.var_vqvae import num_tokens


def main():
  args = parse_args(__doc__, 'argenseg:variant=mid', prompt=300, text=32)
  cfg, graphdef, state = random_model(
      args.config, lambda cfg: params.init(functools.partial(ARGenSeg, cfg)))
  tokens = cfg.tokens
  slots = num_tokens(cfg.vqvae.patch_nums)
  text = args.prompt - 258

  def prompt(b):
    rng = np.random.default_rng(b)
    row = np.concatenate([rng.integers(3, 4000, text // 2), [tokens.img_context_token_id - 2],
                          [tokens.img_context_token_id] * 256, [tokens.img_context_token_id - 1],
                          rng.integers(3, 4000, text - text // 2)]).astype(np.int32)
    ids = np.tile(row, (b, 1))
    pixels = rng.normal(size=(b, 448, 448, 3)).astype(np.float32)
    return ids, np.ones_like(ids, bool), pixels, np.ones((b,), np.int32)

  greedy = sampler.SamplerConfig()
  raster = sampler.SamplerConfig(raster=True)

  def stages(state, ids, mask, pixels, flags, scfg, upto):
    m = nnx.merge(graphdef, state)
    b, p = ids.shape
    _, positions, _, cache = sampler.prefill(m, ids, mask, pixels, flags, p + slots)
    if upto == 'prefill':
      return cache.k
    start = jnp.full((b,), tokens.gen_start_token_id)
    res = sampler.mask_pass(m, start, positions[:, -1] + 1, jnp.ones((b,), bool), cache, scfg,
                            jax.random.key(0))
    if upto == 'passes':
      return res.codes
    return m.image_tokenizer.decode(res.codes)

  run = jax.jit(stages, static_argnums=(5, 6))
  text_only = sampler.SamplerConfig(max_new_tokens=args.text, eos_token_id=-1)
  generate = jax.jit(lambda s, *a: sampler.generate(nnx.merge(graphdef, s), *a, text_only,
                                                    jax.random.key(0)))
  decode = jax.jit(lambda s, c: nnx.merge(graphdef, s).image_tokenizer.decode(c))
  print(f'{"batch":>5} {"stage":<26} {"compile+1st (s)":>16} {"per call (s)":>13} '
        f'{"per mask (s)":>13}')
  for b in args.batch:
    inputs = prompt(b)
    rows = {}
    for name, scfg, upto in (('prefill (ViT + 300 tokens)', greedy, 'prefill'),
                             ('prefill + 10 scale passes', greedy, 'passes'),
                             ('one mask end to end', greedy, 'image'),
                             ('prefill + 680 raster steps', raster, 'passes')):
      rows[name] = time_call(run, state, *inputs, scfg, upto,
                             reps=1 if scfg.raster else args.reps)  # raster: slow
    rows[f'generate, {args.text} text tokens'] = time_call(generate, state, *inputs,
                                                          reps=args.reps)
    codes = run(state, *inputs, greedy, 'passes')
    rows['VQ-VAE decode (final scale)'] = time_call(decode, state, codes, reps=args.reps)
    prefill = rows['prefill (ViT + 300 tokens)'][1]
    rows['10 scale passes'] = (float('nan'), rows['prefill + 10 scale passes'][1] - prefill)
    rows['680 raster steps'] = (float('nan'), rows['prefill + 680 raster steps'][1] - prefill)
    for name, (first, steady) in rows.items():
      print(f'{b:5d} {name:<26} {first:16.2f} {steady:13.3f} {steady / b:13.3f}')
    ratio = rows['680 raster steps'][1] / rows['10 scale passes'][1]
    print(f'{b:5d} next-scale vs raster: {ratio:.1f}x; masks/s end to end: '
          f'{b / rows["one mask end to end"][1]:.3f}', flush=True)


if __name__ == '__main__':
  main()
