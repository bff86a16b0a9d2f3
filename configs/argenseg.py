"""ARGenSeg configs: the image path, InternLM2, the VQ-VAE and the special-token ids.

`get_config('variant=8b')` is ARGenSeg-8B (InternViT-300M + InternLM2.5-7B, vocab 96653,
VAR ch=160 tokenizer); `variant=mid` is the speed-baseline model of
`shared/reference/baseline.md` (InternViT 2 layers x 256, InternLM2 8 layers x 1024,
vocab 5000 text + 13 specials + 4096 codes = 9109, the real-structure VQ-VAE); `res=512`
switches the mask schedule to 2240 tokens. `variant=tiny` is the CPU training config of
the tests: 64-px images (patch 8: 16 image tokens), InternLM2 2 x 64, a byte-level
vocabulary (`ByteTokenizer`: 259 bytes, `<|im_start|>`, `<|im_end|>`, the 13 specials)
and a 64-px VQ-VAE with scales 1,2,3,4 (30 tokens, 64 codes). Checkpoints bring their own config
(`load_pretrained`); these are for building from scratch and for benchmarks.

  python benchmarks/sampler_bench.py --config argenseg:variant=mid
"""

import ml_collections

from argenseg_jax import chat_template, config_args

SPECIALS = ('<img>', '</img>', '<IMG_CONTEXT>', '<quad>', '</quad>', '<ref>', '</ref>',
            '<box>', '</box>', '<mask>', '<ge_start>', '<ge_end>', '<MASK_CONTEXT>')
CHAT_TOKENS = ('<|im_start|>', '<|im_end|>')
FIRST_SPECIAL = {'8b': 92544, 'mid': 5000, 'tiny': 259 + len(CHAT_TOKENS)}


def token_ids(first: int) -> dict[str, int]:
  """InternVL's and ARGenSeg's added tokens, consecutive from `first`."""
  return {t: first + i for i, t in enumerate(SPECIALS)}


def _tiny_parts():
  image = config_args.load_config('internvl_vision:variant=tiny')
  image.vision.update(image_size=64, patch_size=8)
  llm = config_args.load_config('internlm2:variant=tiny')
  vqvae = config_args.load_config('var_vqvae:variant=tiny,res=64,patch_nums=1+2+3+4,'
                                  'vocab_size=64')
  return image, llm, vqvae


def get_config(arg=None):
  args = config_args.parse_arg(arg, variant='mid', res=256)
  if args.variant not in FIRST_SPECIAL:
    raise ValueError(f'variant must be one of {sorted(FIRST_SPECIAL)}, got {args.variant!r}.')
  ids = token_ids(FIRST_SPECIAL[args.variant])
  vqvae = config_args.load_config(f'var_vqvae:res={args.res}')
  if args.variant == '8b':
    image = config_args.load_config('internvl_vision:variant=real')
    llm = config_args.load_config('internlm2:variant=7b')
  elif args.variant == 'tiny':
    image, llm, vqvae = _tiny_parts()
  else:
    image = config_args.load_config('internvl_vision:variant=tiny')
    image.vision.update(hidden_size=256, intermediate_size=1024, num_attention_heads=4)
    image.llm_hidden_size = 1024
    llm = config_args.load_config('internlm2:variant=mid')
  llm.vocab_size = ids['<MASK_CONTEXT>'] + 1 + vqvae.vocab_size
  # byte-level models name their added tokens in id order (`ByteTokenizer.with_tokens`)
  tiny = args.variant == 'tiny'
  return ml_collections.ConfigDict(dict(
      name='argenseg', image=image, llm=llm, vqvae=vqvae,
      byte_tokens=CHAT_TOKENS + SPECIALS if tiny else (),
      system_prompt='' if tiny else chat_template.SYSTEM_PROMPT,
      img_context_token_id=ids['<IMG_CONTEXT>'],
      tokens=dict(img_context_token_id=ids['<IMG_CONTEXT>'],
                  gen_start_token_id=ids['<ge_start>'], gen_end_token_id=ids['<ge_end>'],
                  mask_context_token_id=ids['<MASK_CONTEXT>'],
                  visual_token_base=ids['<MASK_CONTEXT>'] + 1)))
