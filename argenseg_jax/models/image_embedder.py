"""InternVL's image path: InternViT -> drop CLS -> pixel shuffle -> `mlp1`.

`embed_image(pixels [T, 448, 448, 3]) -> [T, 256, D_llm]`: one row of LLM-width image
tokens per 448-px tile (they replace the `<IMG_CONTEXT>` tokens of the prompt).
"""

from typing import NamedTuple

import jax
import ml_collections
from flax import nnx

from argenseg_jax.models.intern_vit import InternViT
from argenseg_jax.models.projector import Projector, flatten_grid, pixel_shuffle, tokens_to_grid


class ImageFeatures(NamedTuple):
  vit_hidden: jax.Array      # [T, 1 + N, C_vit] the selected ViT layer (CLS first)
  pixel_shuffled: jax.Array  # [T, N / 4, 4 C_vit]
  embeds: jax.Array          # [T, N / 4, D_llm]


class ImageEmbedder(nnx.Module):
  """`vision_model` (InternViT) + `mlp1`, named like the checkpoint. With
  `freeze_backbone` (default, as ARGenSeg trains) no gradient flows into the ViT."""

  def __init__(self, cfg: ml_collections.ConfigDict, rngs: nnx.Rngs):
    self.select_layer = cfg.select_layer
    self.freeze_backbone = cfg.get('freeze_backbone', True)
    self.downsample_ratio = cfg.downsample_ratio
    self.ps_version = cfg.ps_version
    self.num_layers = cfg.vision.num_hidden_layers
    if not -self.num_layers - 1 <= self.select_layer <= self.num_layers:
      raise ValueError(f'select_layer {self.select_layer} is outside the '
                       f'{self.num_layers + 1} hidden states.')
    self.vision_model = InternViT(cfg.vision, rngs)
    in_dim = cfg.vision.hidden_size * int(round(1 / cfg.downsample_ratio)) ** 2
    self.mlp1 = Projector(in_dim, cfg.llm_hidden_size, rngs)

  def features(self, pixels: jax.Array, drop_path_rng: jax.Array | None = None) -> ImageFeatures:
    """All intermediate results for `pixels: [T, H, W, 3]` (ImageNet-normalised)."""
    index = self.select_layer % (self.num_layers + 1)  # hidden_states[select_layer]
    hidden = self.vision_model(pixels, num_layers=index, drop_path_rng=drop_path_rng)[index]
    if self.freeze_backbone:  # ARGenSeg trains mlp1 but not the ViT: no backward through it
      hidden = jax.lax.stop_gradient(hidden)
    shuffled = flatten_grid(pixel_shuffle(tokens_to_grid(hidden[:, 1:]),
                                          self.downsample_ratio, self.ps_version))
    return ImageFeatures(hidden, shuffled, self.mlp1(shuffled))

  def embed_image(self, pixels: jax.Array) -> jax.Array:
    """`[T, 448, 448, 3] -> [T, 256, D_llm]`."""
    return self.features(pixels).embeds
