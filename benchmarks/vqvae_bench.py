"""VQ-VAE encode / decode speed, jitted, float32, random weights.

  python benchmarks/vqvae_bench.py [--config var_vqvae] [--batch 1,8] [--reps 3]

Encode = image -> 10-scale codes (`img_to_idxBl`); decode = codes -> final image
(`idxBl_to_img`, one decoder pass). Prints compile time and the median of `--reps`
steady-state runs, per call and per image.
"""

import argparse
import statistics
import time

import jax
import numpy as np
from absl import flags
from flax import nnx

from argenseg_jax.config_args import load_config
from argenseg_jax.models import var_vqvae_io
from argenseg_jax.models.var_vqvae import param_count


def _time(fn, *args, reps: int) -> tuple[float, float]:
  t0 = time.perf_counter()
  jax.block_until_ready(fn(*args))
  first = time.perf_counter() - t0
  runs = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    runs.append(time.perf_counter() - t0)
  return first, statistics.median(runs)


def main():
  flags.FLAGS.mark_as_parsed()
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--config', default='var_vqvae')
  parser.add_argument('--batch', default='1,8')
  parser.add_argument('--reps', type=int, default=3)
  args = parser.parse_args()
  cfg = load_config(args.config)
  t0 = time.perf_counter()
  graphdef, state = nnx.split(var_vqvae_io.init_vqvae(cfg, seed=0))
  jax.block_until_ready(state)
  print(f'{args.config}: {param_count(nnx.state(nnx.merge(graphdef, state), nnx.Param)) / 1e6:.1f} M '
        f'parameters, {cfg.resolution}px, scales {tuple(cfg.patch_nums)}; '
        f'{jax.device_count()} x {jax.devices()[0].device_kind}, float32; '
        f'random init {time.perf_counter() - t0:.1f}s')
  encode = jax.jit(lambda s, x: nnx.merge(graphdef, s).img_to_idxBl(x))
  decode = jax.jit(lambda s, c: nnx.merge(graphdef, s).idxBl_to_img(c))
  print(f'{"stage":8} {"batch":>5} {"compile+1st (s)":>16} {"per call (s)":>13} {"per image (s)":>14}')
  for b in (int(v) for v in args.batch.split(',')):
    x = np.random.default_rng(b).uniform(-1, 1, (b, cfg.resolution, cfg.resolution, 3))
    x = x.astype(np.float32)
    for name, fn, arg in (('encode', encode, x),
                          ('decode', decode, [np.asarray(c) for c in encode(state, x)])):
      first, steady = _time(fn, state, arg, reps=args.reps)
      print(f'{name:8} {b:5d} {first:16.2f} {steady:13.3f} {steady / b:14.3f}', flush=True)


if __name__ == '__main__':
  main()
