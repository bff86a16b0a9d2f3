"""Train the tiny byte-level ARGenSeg on synthetic referring scenes, on CPU.

  argenseg train --config configs/train_tiny.py --workdir /tmp/tiny
  argenseg train --config configs/train_tiny.py:steps=300 --workdir /tmp/tiny --config.batch_size=16

The same code path as the 8B recipe (f32 because bf16 is slower on CPU, no remat, a
short schedule). The loss falls from ~11 (text 5.8 + gen 5.8) within the first few
dozen steps; see `tests/test_training.py`.
"""

from argenseg_jax import config_args
from argenseg_jax.training.defaults import base_config


def get_config(arg=None):
  args = config_args.parse_arg(arg, steps=60, samples=4096)
  config = base_config()
  config.model = 'argenseg:variant=tiny'
  config.data.spec = f'synthetic:seed=0,n={args.samples},size=64'
  config.data.length_buckets = (256,)
  config.update(batch_size=4, num_steps=args.steps, compute_dtype='float32', remat=False,
                log_every=1)
  config.optimizer.update(lr=1e-3, warmup_ratio=0.1)
  config.checkpoint.update(every=20, keep=2)
  return config
