"""InternVL's image path: InternViT -> drop CLS -> pixel shuffle -> `mlp1`.

`embed_image(pixels [T, 448, 448, 3]) -> [T, 256, D_llm]`: one row of LLM-width image
tokens per 448-px tile (they replace the `<IMG_CONTEXT>` tokens of the prompt).
"""

from typing import NamedTuple

import jax
import ml_collections
from flax import nnx

from argenseg_jax.layers import logical, posemb
from argenseg_jax.models.intern_vit import InternViT
from argenseg_jax.models.projector import Projector, flatten_grid, pixel_shuffle, tokens_to_grid


class ImageFeatures(NamedTuple):
  vit_hidden: jax.Array      # [T, 1 + N, C_vit] the selected ViT layer (CLS first)
  pixel_shuffled: jax.Array  # [T, N / 4, 4 C_vit]
  embeds: jax.Array          # [T, N / 4, D_llm]


class ImageEmbedder(nnx.Module):
  """`vision_model` (InternViT) + `mlp1`, named like the checkpoint. Whether the ViT
  trains is the train config's `frozen` alone (`training/train_state.py`); the
  `freeze_backbone` key of older saved configs is ignored.

  `token_pos_init='sincos2d'` (models trained from scratch; not in the original) adds a
  trainable `token_pos [N / 4, D_llm]` to the image tokens, started at the 2D sine-cosine
  table of their cells in units of image-token cells: the frame of ARGenSeg's mask slots
  (`slot_init`) when there is one image token per final-scale cell."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    self.select_layer = cfg.select_layer
    self.downsample_ratio = cfg.downsample_ratio
    self.ps_version = cfg.ps_version
    self.num_layers = cfg.vision.num_hidden_layers
    if not -self.num_layers - 1 <= self.select_layer <= self.num_layers:
      raise ValueError(f'select_layer {self.select_layer} is outside the '
                       f'{self.num_layers + 1} hidden states.')
    self.vision_model = InternViT(cfg.vision, rngs)
    in_dim = cfg.vision.hidden_size * int(round(1 / cfg.downsample_ratio)) ** 2
    self.mlp1 = Projector(in_dim, cfg.llm_hidden_size, rngs)
    self.token_pos = nnx.data(None)
    if cfg.get('token_pos_init', ''):
      if cfg.token_pos_init != 'sincos2d':
        raise ValueError(f"token_pos_init must be '' or 'sincos2d', got {cfg.token_pos_init!r}.")
      side = int(round(cfg.vision.image_size // cfg.vision.patch_size * self.downsample_ratio))
      self.token_pos = logical.param(posemb.sincos_2d(*posemb.grid_points(side, side),
                                                  cfg.llm_hidden_size),
                                 (None, 'embed'))

  def features(self, pixels: jax.Array, drop_path_rng: jax.Array | None = None) -> ImageFeatures:
    """All intermediate results for `pixels: [T, H, W, 3]` (ImageNet-normalised)."""
    index = self.select_layer % (self.num_layers + 1)  # hidden_states[select_layer]
    hidden = self.vision_model(pixels, num_layers=index, drop_path_rng=drop_path_rng)
    shuffled = flatten_grid(pixel_shuffle(tokens_to_grid(hidden[:, 1:]),
                                          self.downsample_ratio, self.ps_version))
    embeds = self.mlp1(shuffled)
    if self.token_pos is not None:
      embeds = embeds + self.token_pos[...].astype(embeds.dtype)
    return ImageFeatures(hidden, shuffled, embeds)

  def embed_image(self, pixels: jax.Array) -> jax.Array:
    """`[T, 448, 448, 3] -> [T, 256, D_llm]`."""
    return self.features(pixels).embeds
