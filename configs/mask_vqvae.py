"""Train the small mask VQ-VAE of the synthetic domain (VAR's multi-scale VQ-VAE).

  argenseg train --config configs/mask_vqvae.py --workdir /tmp/mask_vqvae
  argenseg vae-roundtrip --checkpoint /tmp/mask_vqvae/export

`model` is the frozen `image_tokenizer` of the bundled small ARGenSeg (`configs/argenseg.py`
reads it): scales 1,2,3,4,6,8 (130 tokens) at 128 px. Five levels (`ch_mult` of length 5)
downsample by 16, so the latent is 8x8 = the last scale. `ch=16` needs `norm_groups=8`
(VAR's GroupNorm(32) cannot split 16 channels). `variant=tiny` (16 px, scales 1,2,4) only
shrinks sizes, for tests. Any field can be overridden, e.g. `--config.batch_size=16`.

Recipe (`argenseg_jax/training/mask_vqvae_task.py`, data `data_pipelines/synthetic_masks.py`):
600 steps x 8 of 2048 masks of seed 0, half of them the union of a 6-10 object scene;
L1 + L2 with foreground pixels weighted x11, VAR's commitment/codebook loss; AdamW 2e-3,
20 warmup steps then cosine, decay 1e-4 on conv kernels; dead codes re-drawn every 25
steps up to 300. Expected (the shipped `argenseg_jax/assets/mask_vqvae`, trained with this
recipe by an earlier loop, other initialisation and data order; 665 s on 2 CPU cores):
held-out (seed 1, 256 referent masks) round trip at ARGenSeg's threshold: IoU mean 0.874,
cIoU 0.905 (big shapes ~0.95; 10-18 px shapes lose their corners, ~0.7-0.85); codes used
per scale (share of the 256 / perplexity) 0.01/1, 0.09/5, 0.19/9, 0.32/13, 0.35/11,
0.95/26: the coarse scales carry little of a small mask.
"""

import ml_collections

from argenseg_jax import config_args
from argenseg_jax.training.defaults import base_config

VARIANTS = {
    'base': dict(resolution=128, patch_nums=(1, 2, 3, 4, 6, 8), ch=16, norm_groups=8,
                 ch_mult=(1, 1, 2, 2, 4), vocab_size=256),
    'tiny': dict(resolution=16, patch_nums=(1, 2, 4), ch=8, norm_groups=4,
                 ch_mult=(1, 2, 2), vocab_size=32),
}


def get_config(arg=None):
  args = config_args.parse_arg(arg, variant='base', steps=600)
  if args.variant not in VARIANTS:
    raise ValueError(f'variant must be one of {sorted(VARIANTS)}, got {args.variant!r}.')
  config = base_config().to_dict()
  for unused in ('init_from', 'image_tokenizer', 'remat', 'attention'):  # ARGenSeg's
    del config[unused]
  config.update(
      task='mask_vqvae',
      model=dict(name='var_vqvae', z_channels=8, num_res_blocks=1, beta=0.25,
                 quant_conv_ks=3, quant_resi=0.5, share_quant_resi=4,
                 **VARIANTS[args.variant]),
      data=dict(num_masks=2048, seed=0, crowd_fraction=0.5, crowd_objects=(6, 10),
                held_out_masks=256, held_out_seed=1),
      loss=dict(l1_weight=1.0, l2_weight=1.0, vq_weight=1.0, fg_weight=10.0),
      refresh=dict(every=25, until=300, masks=64),
      batch_size=8, num_steps=args.steps, compute_dtype='float32', frozen=(),
      checkpoint=dict(every=100, keep=1, async_save=True), log_every=25)
  config['optimizer'].update(lr=2e-3, warmup_ratio=1 / 30, weight_decay=1e-4, decay_ndim=4)
  return ml_collections.ConfigDict(config)
