"""VAR multi-scale VQ-VAE, the mask tokenizer of ARGenSeg.

`get_config('variant=real,res=256')` is `vae_ch160v4096z32.pth` (108.9 M parameters):
vocab 4096, z 32, ch 160, scales 1,2,3,4,5,6,8,10,13,16 (680 tokens) at 256 px, or
1,2,3,4,6,9,13,18,24,32 (2240 tokens) with `res=512`. `variant=tiny` only narrows the
network (ch 32, vocab 512), the same code path as the real one. Any model field can be
overridden, e.g. `ch=32,vocab_size=512`.

Check a real checkpoint against reference outputs made by the original code:
  argenseg convert vae --from vae_ch160v4096z32.pth --to ckpt/vae
  python -m argenseg_jax.parity ../shared/golden/var_vqvae   # tiny fixture, must pass
"""

import ml_collections

from argenseg_jax import config_args
from argenseg_jax.models.var_vqvae import check_config

PATCH_NUMS = {256: (1, 2, 3, 4, 5, 6, 8, 10, 13, 16),
              512: (1, 2, 3, 4, 6, 9, 13, 18, 24, 32)}
VARIANTS = {'real': dict(ch=160, vocab_size=4096), 'tiny': dict(ch=32, vocab_size=512)}


def get_config(arg=None):
  args = config_args.parse_arg(arg, variant='real', res=256, ch=0, vocab_size=0,
                               z_channels=32, patch_nums=(0,))
  if args.variant not in VARIANTS:
    raise ValueError(f'variant must be one of {sorted(VARIANTS)}, got {args.variant!r}.')
  if args.res not in PATCH_NUMS and args.patch_nums == (0,):
    raise ValueError(f'res must be 256 or 512 (or give patch_nums), got {args.res}.')
  variant = VARIANTS[args.variant]
  cfg = ml_collections.ConfigDict(dict(
      name='var_vqvae',
      vocab_size=args.vocab_size or variant['vocab_size'],
      z_channels=args.z_channels,
      ch=args.ch or variant['ch'],
      ch_mult=(1, 1, 2, 2, 4),
      num_res_blocks=2,
      beta=0.25,
      quant_conv_ks=3,
      quant_resi=0.5,
      share_quant_resi=4,
      resolution=args.res,
      patch_nums=args.patch_nums if args.patch_nums != (0,) else PATCH_NUMS[args.res],
  ))
  check_config(cfg)
  return cfg
