"""Building and loading ARGenSeg (`InternVLGenSeg` state_dict keys)."""

import ml_collections
import numpy as np

from argenseg_jax.checkpoints import params
from argenseg_jax.checkpoints.conversion import Rule
from argenseg_jax.models import image_embedder_io, internlm2_io, internvl_chat_io, var_vqvae_io
from argenseg_jax.models.argenseg import ARGenSeg

# The added tokens: InternVL's, then ARGenSeg's, in id order (a checkpoint's tokenizer
# says where they start). The chat markers are pieces of the base vocabulary.
INTERNVL_TOKENS = ('<img>', '</img>', '<IMG_CONTEXT>', '<quad>', '</quad>', '<ref>', '</ref>',
                   '<box>', '</box>')
ARGENSEG_TOKENS = ('<mask>', '<ge_start>', '<ge_end>', '<MASK_CONTEXT>')
CHAT_TOKENS = ('<|im_start|>', '<|im_end|>')


def added_token_ids(first: int) -> dict[str, int]:
  """InternVL's and ARGenSeg's added tokens, consecutive from `first`."""
  return {t: first + i for i, t in enumerate(INTERNVL_TOKENS + ARGENSEG_TOKENS)}


def token_config(token_ids: dict[str, int]) -> ml_collections.ConfigDict:
  """The ids the model needs, from the tokenizer's added tokens; the visual codes follow
  `<MASK_CONTEXT>` (id of code i = `<MASK_CONTEXT>` + 1 + i)."""
  missing = [t for t in ('<IMG_CONTEXT>',) + ARGENSEG_TOKENS[1:] if t not in token_ids]
  if missing:
    raise ValueError(f'the tokenizer lacks the special tokens {missing}: not an ARGenSeg '
                     'checkpoint (InternVL checkpoints need the ARGenSeg tokens added).')
  return ml_collections.ConfigDict(dict(
      img_context_token_id=token_ids['<IMG_CONTEXT>'],
      gen_start_token_id=token_ids['<ge_start>'], gen_end_token_id=token_ids['<ge_end>'],
      mask_context_token_id=token_ids['<MASK_CONTEXT>'],
      visual_token_base=token_ids['<MASK_CONTEXT>'] + 1))


def config_from_hf(chat: dict, token_ids: dict[str, int],
                   vqvae: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Our config from an `InternVLChatConfig` dict, the tokenizer's special-token ids and
  the VQ-VAE config (whose patch_nums set the 256 / 512 px schedule)."""
  tokens = token_config(token_ids)
  cfg = internvl_chat_io.config_from_hf(chat, tokens.img_context_token_id)
  cfg.tokens = tokens
  cfg.vqvae = vqvae
  return cfg


def config_to_hf(cfg: ml_collections.ConfigDict) -> dict:
  """The `InternVLChatConfig` dict (`config.json`) that `config_from_hf` maps back to
  `cfg` (with the tokenizer's ids and `cfg.vqvae`)."""
  llm = {k: cfg.llm[k] for k in internlm2_io.HF_DEFAULTS if k in cfg.llm}
  llm['rope_scaling'] = {'type': 'dynamic', 'factor': cfg.llm.rope_scaling_factor}
  vision = {k: cfg.image.vision[k] for k in image_embedder_io.HF_VISION_DEFAULTS}
  return dict(architectures=['InternVLChatModel'], vision_config=vision, llm_config=llm,
              downsample_ratio=cfg.image.downsample_ratio, ps_version=cfg.image.ps_version,
              select_layer=cfg.image.select_layer, gen_img_reso=cfg.vqvae.resolution)


def added_tokens(cfg: ml_collections.ConfigDict) -> dict[str, int]:
  """The special tokens `token_config` reads (an `added_tokens.json`)."""
  t = cfg.tokens
  return {'<IMG_CONTEXT>': t.img_context_token_id, '<ge_start>': t.gen_start_token_id,
          '<ge_end>': t.gen_end_token_id, '<MASK_CONTEXT>': t.mask_context_token_id}


def conversion_table(cfg: ml_collections.ConfigDict) -> list[Rule]:
  extras = [Rule('word_embed/kernel', 'word_embed.weight', 'linear_oi_to_io'),
            Rule('word_embed/bias', 'word_embed.bias'), Rule('pos_1LC', 'pos_1LC'),
            Rule('lvl_embed/embedding', 'lvl_embed.weight')]
  vae = [Rule(f'image_tokenizer/{r.ours}', f'image_tokenizer.{r.theirs}', r.transform, r.args)
         for r in var_vqvae_io.conversion_table(cfg.vqvae)]
  return internvl_chat_io.conversion_table(cfg) + extras + vae


def from_state_dict(checkpoint: dict[str, np.ndarray], cfg: ml_collections.ConfigDict) -> ARGenSeg:
  """ARGenSeg from an `InternVLGenSeg.state_dict()` holding `image_tokenizer.*`."""
  excused = tuple(f'image_tokenizer.{k}' for k in var_vqvae_io.EXCUSED_KEYS)
  return params.from_checkpoint(
      lambda rngs: ARGenSeg(cfg, rngs), conversion_table(cfg), checkpoint, excused=excused,
      hint=var_vqvae_io.config_hint(checkpoint, cfg.vqvae, 'image_tokenizer.'))
