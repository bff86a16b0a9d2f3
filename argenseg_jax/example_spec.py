"""`ExampleSpec`: what one encoded example of a model looks like (tile size, image
tokens, mask schedule, prompt), read from the model's config by `spec_for`. Inference
(`Segmenter`) and the training data (`data_pipelines/train_pipeline.py`) share it."""

import dataclasses

from argenseg_jax import chat_template
from argenseg_jax.models.var_vqvae import num_tokens


@dataclasses.dataclass(frozen=True)
class ExampleSpec:
  """What one encoded example looks like; built from a model config by `spec_for`."""
  image_size: int                 # ViT tile side S
  image_tokens: int               # `<IMG_CONTEXT>` tokens per tile
  mask_resolution: int            # VQ-VAE input side R
  mask_tokens: int                # visual tokens per mask (680 at 256 px)
  max_masks: int = 1              # mask slots per example (M)
  length_buckets: tuple[int, ...] = (1024, 2048, 4096, 8192)
  pad_id: int = 0
  system_prompt: str = chat_template.SYSTEM_PROMPT
  question_style: str = 'internvl'  # `chat_template.referring_question`
  max_consecutive_skips: int = 1000  # then the data cannot fit: stop with an error

  @property
  def max_length(self) -> int:
    return self.length_buckets[-1]


def spec_for(model_cfg, **overrides) -> ExampleSpec:
  """The `ExampleSpec` of an ARGenSeg config (`configs/argenseg.py` structure): tile
  size, image tokens, mask schedule, system prompt and question style come from the
  model."""
  vision = model_cfg.image.vision
  grid = vision.image_size // vision.patch_size
  image_tokens = int(round(grid * model_cfg.image.downsample_ratio)) ** 2
  return ExampleSpec(image_size=vision.image_size, image_tokens=image_tokens,
                     mask_resolution=model_cfg.vqvae.resolution,
                     mask_tokens=num_tokens(model_cfg.vqvae.patch_nums),
                     **{'system_prompt': system_prompt(model_cfg),
                        'question_style': model_cfg.get('question_style', 'internvl'),
                        **overrides})


def system_prompt(model_cfg) -> str:
  """The system turn the model was trained with (InternVL's unless the config says)."""
  return model_cfg.get('system_prompt', chat_template.SYSTEM_PROMPT)
