"""InternLM2 prefill throughput and decode-step latency, jitted, float32, random weights.

  python benchmarks/llm_bench.py [--config internlm2:variant=mid] [--batch 1,8]
                                 [--prompt 300] [--reps 3]

Prefill = one pass over a `--prompt`-token prompt into an empty cache (tokens/s counts
all rows); decode step = one new token per row against that cache (latency per step).
The cache holds prompt + 64 tokens.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from timing import parse_args, random_model, time_call

from argenseg_jax.checkpoints import params
from argenseg_jax.models.internlm2 import InternLM2


def main():
  args = parse_args(__doc__, 'internlm2:variant=mid', prompt=300)
  cfg, graphdef, state = random_model(
      args.config, lambda cfg: params.init(functools.partial(InternLM2, cfg)))

  @jax.jit
  def prefill(state, ids):
    m = nnx.merge(graphdef, state)
    b, n = ids.shape
    cache = m.empty_cache(b, n + 64)
    hidden, cache = m(m.embed(ids), jnp.broadcast_to(jnp.arange(n), (b, n)),
                      jnp.ones((b, n), bool), cache)
    return m.logits(hidden[:, -1:]), cache

  @jax.jit
  def step(state, ids, cache):
    m = nnx.merge(graphdef, state)
    b = ids.shape[0]
    positions = cache.length[:, None]
    hidden, cache = m(m.embed(ids), positions, jnp.ones((b, 1), bool), cache)
    return m.logits(hidden), cache

  print(f'{"batch":>5} {"stage":>8} {"compile+1st (s)":>16} {"per call (s)":>13} {"tokens/s":>9}')
  for b in args.batch:
    ids = np.random.default_rng(b).integers(0, cfg.vocab_size, (b, args.prompt), np.int32)
    first, steady = time_call(prefill, state, ids, reps=args.reps)
    print(f'{b:5d} {"prefill":>8} {first:16.2f} {steady:13.3f} {b * args.prompt / steady:9.0f}')
    _, cache = prefill(state, ids)
    first, steady = time_call(step, state, ids[:, :1], cache, reps=args.reps)
    print(f'{b:5d} {"decode":>8} {first:16.2f} {steady:13.4f} {b / steady:9.0f}', flush=True)


if __name__ == '__main__':
  main()
