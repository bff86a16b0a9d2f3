"""ARGenSeg configs: the image path, InternLM2, the VQ-VAE and the special-token ids.

`get_config('variant=8b')` is ARGenSeg-8B (InternViT-300M + InternLM2.5-7B, vocab 96653,
VAR ch=160 tokenizer); `variant=mid` is the speed-baseline model of
`shared/reference/baseline.md` (InternViT 2 layers x 256, InternLM2 8 layers x 1024,
vocab 5000 text + 13 specials + 4096 codes = 9109, the real-structure VQ-VAE); `res=512`
switches the mask schedule to 2240 tokens. `variant=tiny` is the CPU training config of
the tests: 64-px images (patch 8: 16 image tokens), InternLM2 2 x 64, a byte-level
vocabulary (`ByteTokenizer`: 259 bytes, `<|im_start|>`, `<|im_end|>`, the 13 specials)
and a 64-px VQ-VAE with scales 1,2,3,4 (30 tokens, 64 codes). `variant=small` is the
model of `configs/train_bundled.py`: 128-px synthetic scenes (patch 8: 64 image tokens,
one per 16x16 cell of the 8x8 mask latent), a trainable ViT 2 x 64, InternLM2 4 x 128,
the byte vocabulary and the mask VQ-VAE of `configs/mask_vqvae.py` (scales 1,2,3,4,6,8:
130 tokens, 256 codes). Trained from scratch, it starts from 2D sine-cosine position
tables (`posemb_init`, `slot_init`: image patches and mask cells know where they are)
instead of the original's random / zero ones. Checkpoints bring their own config
(`load_pretrained`); these are for building from scratch and for benchmarks.

  python benchmarks/sampler_bench.py --config argenseg:variant=mid
"""

import ml_collections

from argenseg_jax import chat_template, config_args

SPECIALS = ('<img>', '</img>', '<IMG_CONTEXT>', '<quad>', '</quad>', '<ref>', '</ref>',
            '<box>', '</box>', '<mask>', '<ge_start>', '<ge_end>', '<MASK_CONTEXT>')
CHAT_TOKENS = ('<|im_start|>', '<|im_end|>')
BYTE_VARIANTS = ('tiny', 'small')
FIRST_SPECIAL = {'8b': 92544, 'mid': 5000,
                 **{v: 259 + len(CHAT_TOKENS) for v in BYTE_VARIANTS}}


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


def _small_parts():
  image = config_args.load_config('internvl_vision:variant=tiny,freeze_backbone=false')
  image.vision.update(image_size=128, patch_size=8, posemb_init='sincos2d')
  llm = config_args.load_config('internlm2:variant=small')
  image.llm_hidden_size = llm.hidden_size
  return image, llm, config_args.load_config('mask_vqvae').model


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
  elif args.variant == 'small':
    image, llm, vqvae = _small_parts()
  else:
    image = config_args.load_config('internvl_vision:variant=tiny')
    image.vision.update(hidden_size=256, intermediate_size=1024, num_attention_heads=4)
    image.llm_hidden_size = 1024
    llm = config_args.load_config('internlm2:variant=mid')
  llm.vocab_size = ids['<MASK_CONTEXT>'] + 1 + vqvae.vocab_size
  # byte-level models name their added tokens in id order (`ByteTokenizer.with_tokens`)
  byte_level = args.variant in BYTE_VARIANTS
  return ml_collections.ConfigDict(dict(
      name='argenseg', image=image, llm=llm, vqvae=vqvae,
      slot_init='sincos2d' if args.variant == 'small' else 'zeros',
      byte_tokens=CHAT_TOKENS + SPECIALS if byte_level else (),
      system_prompt='' if byte_level else chat_template.SYSTEM_PROMPT,
      img_context_token_id=ids['<IMG_CONTEXT>'],
      tokens=dict(img_context_token_id=ids['<IMG_CONTEXT>'],
                  gen_start_token_id=ids['<ge_start>'], gen_end_token_id=ids['<ge_end>'],
                  mask_context_token_id=ids['<MASK_CONTEXT>'],
                  visual_token_base=ids['<MASK_CONTEXT>'] + 1)))
