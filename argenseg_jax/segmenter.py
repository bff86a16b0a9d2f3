"""Segment images from referring expressions with a loaded ARGenSeg (host-side API).

  seg = Segmenter.load('ckpt/argenseg')
  [result] = seg.segment([image], ['Please segment the red circle.'])
  result.text, result.masks[0]          # answer text, bool [H, W]

Prompts are left-padded to a multiple of `bucket` tokens so that one compiled sampler
serves many prompt lengths; one compiled program per (batch size, bucket).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx
from PIL import Image

from argenseg_jax import chat_template, image_io
from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.pretrained import load_pretrained
from argenseg_jax.sampler import SamplerConfig, generate
from argenseg_jax.tokenizer import AddedTokens, load_tokenizer
from argenseg_jax.vqvae_tokenizer import VQVAETokenizer
from data_pipelines.image_transforms import image_to_pixels


@dataclasses.dataclass
class Result:
  text: str                       # the answer, special tokens removed
  token_ids: list[int]            # the answer's ids (through eos)
  masks: list[np.ndarray]         # bool [H, W] per generated mask, at the image size
  mask_images: list[np.ndarray]   # uint8 [256, 256, 3] decoded masks
  codes: list[np.ndarray]         # int [L] visual codes per mask
  out_of_masks: bool = False      # asked for more masks than the sampler had room for


class Segmenter:
  """An ARGenSeg model, its tokenizer and a compiled sampler."""

  def __init__(self, model: ARGenSeg, cfg: ml_collections.ConfigDict, tokenizer: AddedTokens,
               sampler: SamplerConfig = SamplerConfig(), *, bucket: int = 64,
               max_prompt_tokens: int = 4096):
    self.tokenizer = tokenizer
    self.graphdef, self.state = nnx.split(model)
    self.sampler = dataclasses.replace(sampler, eos_token_id=tokenizer.token_id('<|im_end|>'))
    self.vqvae = VQVAETokenizer(model.image_tokenizer, cfg.vqvae)
    self.bucket = bucket
    self.max_prompt_tokens = max_prompt_tokens

  @classmethod
  def load(cls, checkpoint, **kwargs) -> 'Segmenter':
    model, cfg = load_pretrained(checkpoint)
    return cls(model, cfg, load_tokenizer(checkpoint), **kwargs)

  @functools.cached_property
  def _generate(self):
    return jax.jit(lambda state, *args: generate(
        nnx.merge(self.graphdef, state), *args, self.sampler, jax.random.key(0)))

  def decode_masks(self, codes: np.ndarray, all_scales: bool = False) -> np.ndarray:
    """Codes `[n, L]` -> uint8 images `[n, 256, 256, 3]` (or `[S, n, ...]` previews)."""
    return image_io.signed_to_uint8(
        self.vqvae.decode(self.vqvae.split_codes(codes), all_scales=all_scales))

  def generate_ids(self, prompts: list[list[int]], pixels: np.ndarray):
    """Raw sampler output for tokenised prompts and `[B, 448, 448, 3]` pixels."""
    longest = max(len(p) for p in prompts)
    if longest > self.max_prompt_tokens:
      raise ValueError(f'a prompt is {longest} tokens long, over the limit of '
                       f'{self.max_prompt_tokens}.')
    width = -(-longest // self.bucket) * self.bucket
    pad = self.sampler.pad_token_id
    ids = np.array([[pad] * (width - len(p)) + list(p) for p in prompts], np.int32)
    mask = np.array([[0] * (width - len(p)) + [1] * len(p) for p in prompts], bool)
    return self._generate(self.state, ids, mask, jnp.asarray(pixels),
                          jnp.ones((len(prompts),), jnp.int32))

  def segment(self, images: list[Image.Image], prompts: list[str]) -> list[Result]:
    """One result per (RGB image, question) pair; a question without `<image>` gets one."""
    if len(images) != len(prompts):
      raise ValueError(f'{len(images)} images but {len(prompts)} prompts.')
    ids = [chat_template.prompt_ids(self.tokenizer, p, max_length=self.max_prompt_tokens)
           for p in prompts]
    pixels = np.concatenate([image_to_pixels(img) for img in images])
    out = self.generate_ids(ids, pixels)
    tokens, codes, counts = (np.asarray(out.tokens), np.asarray(out.codes),
                             np.asarray(out.num_masks))
    results = []
    for row, image in enumerate(images):
      answer = tokens[row].tolist()
      if self.sampler.eos_token_id in answer:
        answer = answer[:answer.index(self.sampler.eos_token_id) + 1]
      n = int(counts[row])
      mask_images = list(self.decode_masks(codes[row, :n])) if n else []
      results.append(Result(
          text=self.tokenizer.decode(answer, skip_special=True), token_ids=answer,
          masks=[image_io.mask_from_generated(m, image.size) for m in mask_images],
          mask_images=mask_images, codes=list(codes[row, :n]),
          out_of_masks=bool(np.asarray(out.out_of_masks)[row])))
    return results
