"""A small VAR multi-scale VQ-VAE for 128 px masks of the synthetic domain.

The frozen `image_tokenizer` of the bundled small ARGenSeg model: scales 1,2,3,4,6,8 (130
tokens) at 128 px. Five levels (`ch_mult` of length 5) downsample by 16, so the latent is
8x8 = the last scale. `ch=16` needs `norm_groups=8` (VAR's GroupNorm(32) cannot split 16
channels). `variant=tiny` (16 px, scales 1,2,4) only shrinks sizes, for tests. Any train
field can be overridden, e.g. `steps=50,batch_size=4`.

Train (2 CPU cores) and write the tokenizer:
  python -m argenseg_jax.training.vqvae_trainer --config configs/mask_vqvae.py \
      --out argenseg_jax/assets/mask_vqvae
Expected (the shipped `argenseg_jax/assets/mask_vqvae`, 600 steps x 8 masks, 665 s on 2
CPU cores): held-out (seed 1, 256 referent masks) round trip at ARGenSeg's threshold:
IoU mean 0.874, cIoU 0.905 (big shapes ~0.95; 10-18 px shapes lose their corners,
~0.7-0.85); codes used per scale (share of the 256 / perplexity) 0.01/1, 0.09/5, 0.19/9,
0.32/13, 0.35/11, 0.95/26: the coarse scales carry little of a small mask.
"""

import ml_collections

from argenseg_jax import config_args
from argenseg_jax.models.var_vqvae import check_config

VARIANTS = {
    'base': dict(resolution=128, patch_nums=(1, 2, 3, 4, 6, 8), ch=16, norm_groups=8,
                 ch_mult=(1, 1, 2, 2, 4), vocab_size=256),
    'tiny': dict(resolution=16, patch_nums=(1, 2, 4), ch=8, norm_groups=4,
                 ch_mult=(1, 2, 2), vocab_size=32),
}


def get_config(arg=None):
  args = config_args.parse_arg(
      arg, variant='base', ch=0, norm_groups=0, ch_mult=(0,), num_res_blocks=1,
      vocab_size=0, z_channels=8, steps=600, batch_size=8, lr=2e-3,
      warmup_steps=20, weight_decay=1e-4, grad_clip=1.0, l1_weight=1.0, l2_weight=1.0,
      vq_weight=1.0, fg_weight=10.0, crowd_fraction=0.5,
      crowd_objects=(6, 10), reinit_every=25, reinit_until=300, reinit_masks=64, num_masks=2048,
      seed=0, data_seed=0, eval_seed=1, eval_masks=256, log_every=25, eval_every=0)
  if args.variant not in VARIANTS:
    raise ValueError(f'variant must be one of {sorted(VARIANTS)}, got {args.variant!r}.')
  variant = VARIANTS[args.variant]
  model = ml_collections.ConfigDict(dict(
      name='var_vqvae',
      vocab_size=args.vocab_size or variant['vocab_size'],
      z_channels=args.z_channels,
      ch=args.ch or variant['ch'],
      ch_mult=args.ch_mult if args.ch_mult != (0,) else variant['ch_mult'],
      num_res_blocks=args.num_res_blocks,
      norm_groups=args.norm_groups or variant['norm_groups'],
      beta=0.25,
      quant_conv_ks=3,
      quant_resi=0.5,
      share_quant_resi=4,
      resolution=variant['resolution'],
      patch_nums=variant['patch_nums'],
  ))
  check_config(model)
  train = ml_collections.ConfigDict({k: args[k] for k in (
      'steps', 'batch_size', 'lr', 'warmup_steps', 'weight_decay', 'grad_clip', 'l1_weight',
      'l2_weight', 'vq_weight', 'fg_weight', 'crowd_fraction',
      'crowd_objects', 'reinit_every', 'reinit_until', 'reinit_masks', 'num_masks',
      'seed', 'data_seed', 'log_every', 'eval_every')})
  evaluation = ml_collections.ConfigDict(dict(seed=args.eval_seed, num_masks=args.eval_masks))
  return ml_collections.ConfigDict(dict(model=model, train=train, eval=evaluation))
