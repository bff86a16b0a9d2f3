"""VQ-VAE encode / decode speed, jitted, float32, random weights.

  python benchmarks/vqvae_bench.py [--config var_vqvae] [--batch 1,8] [--reps 3]

Encode = image -> 10-scale codes (`VQVAE.encode`); decode = codes -> final image
(`VQVAE.decode`, one decoder pass). Prints compile time and the median of `--reps`
steady-state runs, per call and per image.
"""

import jax
import numpy as np
from flax import nnx
from timing import parse_args, random_model, time_call

from argenseg_jax.models import var_vqvae_io


def main():
  args = parse_args(__doc__, 'var_vqvae')
  cfg, graphdef, state = random_model(args.config, var_vqvae_io.init_vqvae)
  print(f'{cfg.resolution}px, scales {tuple(cfg.patch_nums)}')
  encode = jax.jit(lambda s, x: nnx.merge(graphdef, s).encode(x))
  decode = jax.jit(lambda s, c: nnx.merge(graphdef, s).decode(c))
  print(f'{"stage":8} {"batch":>5} {"compile+1st (s)":>16} {"per call (s)":>13} '
        f'{"per image (s)":>14}')
  for b in args.batch:
    x = np.random.default_rng(b).uniform(-1, 1, (b, cfg.resolution, cfg.resolution, 3))
    x = x.astype(np.float32)
    codes = None
    for name, fn in (('encode', encode), ('decode', decode)):
      first, steady = time_call(fn, state, x if codes is None else codes, reps=args.reps)
      print(f'{name:8} {b:5d} {first:16.2f} {steady:13.3f} {steady / b:14.3f}', flush=True)
      codes = [np.asarray(c) for c in encode(state, x)]


if __name__ == '__main__':
  main()
