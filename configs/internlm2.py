"""InternLM2 decoder configs.

`get_config('variant=7b')` is internlm2_5-7b-chat as extended by ARGenSeg (32 layers,
width 4096, 32 q / 8 kv heads, vocab 96653); `variant=mid` is the size of the speed
baseline in `shared/reference/baseline.md` (8 layers, width 1024, 16 / 8 heads, vocab
9109); `variant=small` is the bundled model's decoder (4 x 128); `variant=tiny` is for
tests. All share one code path.

  python benchmarks/llm_bench.py --config internlm2:variant=mid
"""

import ml_collections

from argenseg_jax import config_args

VARIANTS = {
    '7b': dict(vocab_size=96653, hidden_size=4096, intermediate_size=14336,
               num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8),
    'mid': dict(vocab_size=9109, hidden_size=1024, intermediate_size=2816,
                num_hidden_layers=8, num_attention_heads=16, num_key_value_heads=8),
    'small': dict(vocab_size=512, hidden_size=128, intermediate_size=384,
                  num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2),
    'tiny': dict(vocab_size=512, hidden_size=64, intermediate_size=176,
                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
}


def get_config(arg=None):
  args = config_args.parse_arg(arg, variant='7b')
  if args.variant not in VARIANTS:
    raise ValueError(f'variant must be one of {sorted(VARIANTS)}, got {args.variant!r}.')
  v = VARIANTS[args.variant]
  return ml_collections.ConfigDict(dict(
      v, head_dim=v['hidden_size'] // v['num_attention_heads'], hidden_act='silu',
      max_position_embeddings=32768, initializer_range=0.02, rms_norm_eps=1e-5,
      tie_word_embeddings=False, bias=False, rope_theta=1_000_000,
      rope_scaling_factor=2.0, pad_token_id=2, bos_token_id=1, eos_token_id=2,
      remat=False, scan_layers=True, attention='xla'))
