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
the mask VQ-VAE of `configs/mask_vqvae.py` (scales 1,2,3,4,6,8: 130 tokens, 256 codes).
Trained from scratch on the synthetic grammar, it differs from the original recipe
where that measurably speeds learning (`configs/train_bundled.py` has the curves):
its vocabulary is `data_pipelines/synthetic_vocab.py`'s (one token per word of the
grammar, bytes for other text; `vocabulary=bytes` keeps the byte-level one), the
question comes before the image (`question_style=query_first`, so image tokens see
what is asked; `question_style=internvl` is the original's), and 2D sine-cosine
position tables (`posemb_init`, `slot_init`: image patches and mask cells know where
they are) replace the original's random / zero ones. Checkpoints bring their own config
(`load_pretrained`); these are for building from scratch and for benchmarks.

  python benchmarks/sampler_bench.py --config argenseg:variant=mid
"""

import ml_collections
import sentencepiece as spm

from argenseg_jax import bundled, chat_template, config_args
from argenseg_jax.models import argenseg_io

SCRATCH_VARIANTS = ('tiny', 'small')  # trained from scratch: the config names the tokenizer
BYTES = 259  # `ByteTokenizer`: <unk>, <s>, </s> and 256 bytes


def _tiny_parts():
  image = config_args.load_config('internvl_vision:variant=tiny')
  image.vision.update(image_size=64, patch_size=8)
  llm = config_args.load_config('internlm2:variant=tiny')
  vqvae = config_args.load_config('var_vqvae:variant=tiny,res=64,patch_nums=1+2+3+4,'
                                  'vocab_size=64')
  return image, llm, vqvae


def width_scaled_init(width: int) -> float:
  """GPT-2's init std, 0.02 at width 768, scaled as 1 / sqrt(width): the 0.02 of the
  released configs suits their widths (1024-4096) but starts a 128-wide model so small
  that its attention takes far longer to learn where to look."""
  return round(0.02 * (768 / width) ** 0.5, 4)


def _small_parts(init: str):
  image = config_args.load_config('internvl_vision:variant=tiny')
  image.vision.update(image_size=128, patch_size=8, posemb_init='sincos2d')
  llm = config_args.load_config('internlm2:variant=small')
  image.llm_hidden_size = llm.hidden_size
  if init == 'width':
    image.vision.initializer_range = width_scaled_init(image.vision.hidden_size)
    llm.initializer_range = width_scaled_init(llm.hidden_size)
  elif init != 'released':
    raise ValueError(f'init must be width or released, got {init!r}.')
  return image, llm, config_args.load_config('mask_vqvae').model


def get_config(arg=None):
  args = config_args.parse_arg(arg, variant='mid', res=256, vocabulary='words',
                               question_style='query_first', token_pos='sincos2d',
                               cell_heads=1, cell_strength=3.0, visual_loss='scales',
                               init='width')
  if args.variant not in ('8b', 'mid', *SCRATCH_VARIANTS):
    raise ValueError(f"variant must be one of ['8b', 'mid', 'small', 'tiny'], got "
                     f'{args.variant!r}.')
  if args.vocabulary not in ('words', 'bytes'):
    raise ValueError(f'vocabulary must be words or bytes, got {args.vocabulary!r}.')
  vocabulary = ''
  if args.variant == 'small' and args.vocabulary == 'words':
    vocabulary = bundled.SYNTHETIC_VOCAB.name
  if vocabulary:
    base = spm.SentencePieceProcessor(model_file=str(bundled.SYNTHETIC_VOCAB)).get_piece_size()
  else:
    base = {'8b': 92544, 'mid': 5000}.get(args.variant, BYTES)
  first = base + (len(argenseg_io.CHAT_TOKENS) if args.variant in SCRATCH_VARIANTS else 0)
  tokens = argenseg_io.token_config(argenseg_io.added_token_ids(first))
  vqvae = config_args.load_config(f'var_vqvae:res={args.res}')
  if args.variant == '8b':
    image = config_args.load_config('internvl_vision:variant=real')
    llm = config_args.load_config('internlm2:variant=7b')
  elif args.variant == 'tiny':
    image, llm, vqvae = _tiny_parts()
  elif args.variant == 'small':
    image, llm, vqvae = _small_parts(args.init)
    image.token_pos_init = '' if args.token_pos == 'none' else args.token_pos
  else:
    image = config_args.load_config('internvl_vision:variant=tiny')
    image.vision.update(hidden_size=256, intermediate_size=1024, num_attention_heads=4)
    image.llm_hidden_size = 1024
    llm = config_args.load_config('internlm2:variant=mid')
  llm.vocab_size = tokens.visual_token_base + vqvae.vocab_size
  # models trained from scratch name their added tokens in id order (`scratch_tokenizer`)
  scratch = args.variant in SCRATCH_VARIANTS
  return ml_collections.ConfigDict(dict(
      name='argenseg', image=image, llm=llm, vqvae=vqvae,
      slot_init='sincos2d' if args.variant == 'small' else 'zeros',
      vocabulary=vocabulary,
      added_tokens=(argenseg_io.CHAT_TOKENS + argenseg_io.INTERNVL_TOKENS
                    + argenseg_io.ARGENSEG_TOKENS) if scratch else (),
      system_prompt='' if scratch else chat_template.SYSTEM_PROMPT,
      question_style=args.question_style if args.variant == 'small' else 'internvl',
      cell_heads=args.cell_heads if args.variant == 'small' else 0,
      cell_strength=args.cell_strength,
      visual_loss=args.visual_loss if args.variant == 'small' else 'tokens',
      img_context_token_id=tokens.img_context_token_id,  # read by the InternVL part
      tokens=tokens))
