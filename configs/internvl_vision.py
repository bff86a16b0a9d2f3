"""InternVL2.5's image path (InternViT + pixel shuffle + mlp1), as used by ARGenSeg-8B.

`get_config('variant=real')`: InternViT-300M-448px-V2_5 (24 layers, width 1024, 16 heads,
patch 14, 448 px; 304 M parameters) and mlp1 4096 -> 4096 (LLM width). `variant=tiny`
narrows it (width 64, 2 layers, LLM width 64) on the same code path. `variant=6b` is
InternViT-6B's switches (RMSNorm, qk normalisation) at tiny width, for tests.

  python benchmarks/vision_bench.py           # images/s of embed_image, real config
  python -m argenseg_jax.parity ../shared/golden/intern_vit
"""

import ml_collections

from argenseg_jax import config_args

VISION = {
    'real': dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                 num_hidden_layers=24),
    'tiny': dict(hidden_size=64, intermediate_size=128, num_attention_heads=4,
                 num_hidden_layers=2),
}
LLM_HIDDEN = {'real': 4096, 'tiny': 64}


def vision_config(**overrides) -> ml_collections.ConfigDict:
  """InternViT fields with the InternViT-300M-448px-V2_5 values."""
  cfg = dict(image_size=448, patch_size=14, num_channels=3, qkv_bias=True,
             qk_normalization=False, norm_type='layer_norm', layer_norm_eps=1e-6,
             hidden_act='gelu', initializer_factor=1.0, initializer_range=0.02,
             drop_path_rate=0.0, scan_layers=True, attention='xla', **VISION['real'])
  cfg.update(overrides)
  return ml_collections.ConfigDict(cfg)


def get_config(arg=None):
  args = config_args.parse_arg(arg, variant='real', drop_path_rate=0.0, select_layer=-1)
  if args.variant == '6b':
    vision = vision_config(**VISION['tiny'], norm_type='rms_norm', qk_normalization=True)
    llm = LLM_HIDDEN['tiny']
  elif args.variant in VISION:
    vision, llm = vision_config(**VISION[args.variant]), LLM_HIDDEN[args.variant]
  else:
    raise ValueError(f"variant must be real, tiny or 6b, got {args.variant!r}.")
  vision.drop_path_rate = args.drop_path_rate
  return ml_collections.ConfigDict(dict(
      name='internvl_vision', vision=vision, llm_hidden_size=llm, downsample_ratio=0.5,
      ps_version='v2', select_layer=args.select_layer))
