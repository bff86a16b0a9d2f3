"""Segment images from referring expressions with a loaded ARGenSeg (host-side API).

  seg = Segmenter.load('ckpt/argenseg', batch_size=8)
  [result] = seg.segment([image], ['Please segment the red circle.'])
  result.text, result.masks[0]          # answer text, bool [H, W]

Everything model-specific comes from the checkpoint's config (`example_spec.spec_for`):
the ViT tile side S, the `<IMG_CONTEXT>` tokens per tile, the system prompt and the
VQ-VAE resolution R. Prompts are left-padded to a multiple of `bucket` tokens and the
batch to `batch_size` rows (copies of the last row), so one compiled sampler serves every
call with up to `batch_size` questions of one length bucket.
"""

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx
from PIL import Image

from argenseg_jax import chat_template, image_io, user_input
from argenseg_jax.example_spec import spec_for
from argenseg_jax.image_transforms import image_to_pixels
from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.pretrained import load_pretrained
from argenseg_jax.sampler import SamplerConfig, SamplerOutput, generate
from argenseg_jax.tokenizer import Tokenizer, load_tokenizer
from argenseg_jax.vqvae_tokenizer import VQVAETokenizer


@dataclasses.dataclass
class Result:
  text: str                       # the answer, special tokens removed
  token_ids: list[int]            # the answer's ids (through eos)
  masks: list[np.ndarray]         # bool [H, W] per generated mask, at the image size
  mask_images: list[np.ndarray]   # uint8 [R, R, 3] decoded masks (R: VQ-VAE resolution)
  codes: list[np.ndarray]         # int [L] visual codes per mask
  out_of_masks: bool = False      # asked for more masks than the sampler had room for


def _rgb(image) -> Image.Image:
  """A PIL image (any mode), uint8 `[H, W, 3]` or a file path as an RGB PIL image."""
  return image_io.to_rgb(image) if isinstance(image, Image.Image) else image_io.as_rgb(image)


class Segmenter:
  """An ARGenSeg model, its tokenizer and a compiled sampler for `batch_size` rows."""

  def __init__(self, model: ARGenSeg, cfg: ml_collections.ConfigDict, tokenizer: Tokenizer,
               sampler_config: SamplerConfig = SamplerConfig(), *, batch_size: int = 1,
               bucket: int = 64, max_prompt_tokens: int = 4096):
    if batch_size < 1:
      raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
    self.tokenizer = tokenizer
    self.spec = spec_for(cfg)
    self.graphdef, self.state = nnx.split(model)
    self.sampler_config = dataclasses.replace(sampler_config,
                                              eos_token_id=tokenizer.token_id('<|im_end|>'))
    self.vqvae = VQVAETokenizer(model.image_tokenizer, cfg.vqvae)
    self.batch_size = batch_size
    self.bucket = bucket
    self.max_prompt_tokens = max_prompt_tokens

  @classmethod
  def load(cls, checkpoint, **kwargs) -> 'Segmenter':
    """From a checkpoint directory with its tokenizer files (checked first)."""
    if not user_input.path(checkpoint).is_dir():
      raise FileNotFoundError(
          f'checkpoint {checkpoint}: no such directory. Give a directory written by '
          '`argenseg convert model` or `argenseg train` (WORKDIR/export), a Hugging '
          'Face-style ARGenSeg directory.')
    tokenizer = load_tokenizer(checkpoint)
    model, cfg = load_pretrained(checkpoint)
    return cls(model, cfg, tokenizer, **kwargs)

  @functools.cached_property
  def _generate(self):
    return jax.jit(lambda state, *args: generate(
        nnx.merge(self.graphdef, state), *args, self.sampler_config, jax.random.key(0)))

  def decode_masks(self, codes: np.ndarray, all_scales: bool = False) -> np.ndarray:
    """Codes `[n, L]` -> uint8 images `[n, R, R, 3]` (or `[S, n, ...]` previews)."""
    return image_io.signed_to_uint8(
        self.vqvae.decode(self.vqvae.split_codes(codes), all_scales=all_scales))

  def padded_width(self, length: int) -> int:
    """The width a batch whose longest prompt has `length` tokens is left-padded to."""
    return -(-length // self.bucket) * self.bucket

  def _sample(self, prompts: list[list[int]], pixels: np.ndarray) -> SamplerOutput:
    """The sampler on the rows padded to a multiple of `batch_size` (numpy arrays)."""
    longest = max(len(p) for p in prompts)
    if longest > self.max_prompt_tokens:
      raise ValueError(f'a prompt is {longest} tokens long, over the limit of '
                       f'{self.max_prompt_tokens}.')
    rows = -(-len(prompts) // self.batch_size) * self.batch_size
    prompts = list(prompts) + [prompts[-1]] * (rows - len(prompts))
    pixels = np.concatenate([pixels, np.repeat(pixels[-1:], rows - len(pixels), axis=0)])
    width = self.padded_width(longest)
    pad = self.sampler_config.pad_token_id
    ids = np.array([[pad] * (width - len(p)) + list(p) for p in prompts], np.int32)
    mask = np.array([[0] * (width - len(p)) + [1] * len(p) for p in prompts], bool)
    out = self._generate(self.state, ids, mask, jnp.asarray(pixels),
                         jnp.ones((rows,), jnp.int32))
    return SamplerOutput(*(np.asarray(x) for x in out))

  def generate_ids(self, prompts: list[list[int]], pixels: np.ndarray) -> SamplerOutput:
    """Raw sampler output (numpy, one row per prompt) for tokenised prompts and their
    `[B, S, S, 3]` pixels."""
    if len(prompts) != len(pixels):
      raise ValueError(f'{len(prompts)} prompts but {len(pixels)} image tiles (one per prompt).')
    return SamplerOutput(*(x[:len(prompts)] for x in self._sample(prompts, pixels)))

  def prompt_ids(self, question) -> list[int]:
    """The prompt of one question (whole text or `chat_template.Referring`) as this model
    was trained; ValueError if it is empty, too long or spells a special token."""
    return chat_template.prompt_ids(self.tokenizer, question,
                                    tokens_per_tile=self.spec.image_tokens,
                                    system=self.spec.system_prompt,
                                    style=self.spec.question_style,
                                    max_length=self.max_prompt_tokens)

  def segment(self, images: Sequence, prompts: Sequence) -> list[Result]:
    """One result per (image, question) pair; images are PIL (any mode), uint8
    `[H, W, 3]` or file paths; a question is whole text (without `<image>` it gets one)
    or a `chat_template.Referring` request, worded as this model was trained. Runs
    `batch_size` pairs at a time."""
    if len(images) != len(prompts):
      raise ValueError(f'{len(images)} images but {len(prompts)} prompts.')
    images = [_rgb(img) for img in images]
    ids = [self.prompt_ids(p) for p in prompts]
    results = []
    for start in range(0, len(images), self.batch_size):
      end = start + self.batch_size
      results += self._segment_batch(images[start:end], ids[start:end])
    return results

  def _segment_batch(self, images: list[Image.Image], ids: list[list[int]]) -> list[Result]:
    """At most `batch_size` RGB images and their prompt ids -> results."""
    pixels = np.concatenate([image_to_pixels(img, size=self.spec.image_size)
                             for img in images])
    out = self._sample(ids, pixels)
    decoded = self._decode_all(out.codes, out.num_masks)
    results = []
    for row, image in enumerate(images):
      answer = out.tokens[row].tolist()
      if self.sampler_config.eos_token_id in answer:
        answer = answer[:answer.index(self.sampler_config.eos_token_id) + 1]
      n = int(out.num_masks[row])
      results.append(Result(
          text=self.tokenizer.decode(answer, skip_special=True), token_ids=answer,
          masks=[image_io.mask_from_generated(m, image.size) for m in decoded[row]],
          mask_images=decoded[row], codes=list(out.codes[row, :n]),
          out_of_masks=bool(out.out_of_masks[row])))
    return results

  def _decode_all(self, codes: np.ndarray, counts: np.ndarray) -> list[list[np.ndarray]]:
    """Each row's first `counts[row]` masks, uint8 `[R, R, 3]`, from codes `[B, P, L]`.
    One mask per VQ-VAE call: a batched convolution's last bits depend on the batch size
    and the row's place in it, and a mask must not depend on its neighbours."""
    return [[self.decode_masks(codes[row, k][None])[0] for k in range(n)]
            for row, n in enumerate(counts)]
