"""Images/s of `embed_image` (InternViT + pixel shuffle + mlp1), jitted, float32.

  python benchmarks/vision_bench.py [--config internvl_vision] [--batch 1,8] [--reps 3]

Random weights of the real InternViT-300M + mlp1 (4096) config; one 448-px tile per
image. Compile time (first call) is printed separately from the steady-state median.
"""

import jax
import numpy as np
from flax import nnx
from timing import parse_args, random_model, time_call

from argenseg_jax.models import image_embedder_io


def main():
  args = parse_args(__doc__, 'internvl_vision')
  cfg, graphdef, state = random_model(args.config, image_embedder_io.init_embedder)
  embed = jax.jit(lambda s, x: nnx.merge(graphdef, s).embed_image(x))
  size = cfg.vision.image_size
  print(f'{"batch":>5} {"compile+1st (s)":>16} {"per call (s)":>13} {"images/s":>9}')
  for b in args.batch:
    x = np.random.default_rng(b).normal(size=(b, size, size, 3)).astype(np.float32)
    first, steady = time_call(embed, state, x, reps=args.reps)
    print(f'{b:5d} {first:16.2f} {steady:13.3f} {b / steady:9.2f}', flush=True)


if __name__ == '__main__':
  main()
