"""Train the tiny byte-level ARGenSeg on the bundled miniature of the paper's data mixture.

  argenseg train --config configs/train_mixture_tiny.py --workdir /tmp/mixture

The same meta-file path as the 8B recipe (`config.data.meta`): seven sources in the
original's files (`argenseg_jax/assets/mixture_tiny`, written by
`data_pipelines/miniature_mixture.py`): referring, gRefCOCO with empty targets, COCO
panoptic classes, ADE20K-style classes, LISA instance lists (two masks per answer),
understanding and text-only conversations, in the proportions length x repeat_time.
On CPU in f32; the loss falls within the first dozens of steps (`tests/test_mixture.py`).
"""

from argenseg_jax import config_args
from argenseg_jax.bundled import MIXTURE_TINY
from argenseg_jax.training.defaults import base_config


def get_config(arg=None):
  args = config_args.parse_arg(arg, steps=60)
  config = base_config()
  config.model = 'argenseg:variant=tiny'
  config.data.update(meta=str(MIXTURE_TINY / 'meta.json'), meta_root=str(MIXTURE_TINY),
                     length_buckets=(256,), max_masks=2)
  config.update(batch_size=4, num_steps=args.steps, compute_dtype='float32', remat=False,
                log_every=1)
  config.optimizer.update(lr=1e-3, warmup_ratio=0.1)
  config.checkpoint.update(every=20, keep=2)
  return config
