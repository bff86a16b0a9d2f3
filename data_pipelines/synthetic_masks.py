"""Masks of synthetic scenes: the data of the mask VQ-VAE (`configs/mask_vqvae.py`).

Mask `i` of `SyntheticMasks(num, seed, res, crowd_fraction, crowd_objects)` is the
referent's mask of scene `i` of `SyntheticScenes(num, seed, size=res)` (15 % of them
empty: absent objects), or with probability `crowd_fraction` the union of all objects
of scene `i` of a scene set with `crowd_objects` objects (more shape edges per training
image). It comes with its VQ-VAE input as ARGenSeg's generator is trained to produce it:
channel 0 of `mask_to_vae_input(mask * 255, res)` (PIL bicubic -> 512 -> res; the three
channels are equal) in 0..255; the round trip keeps every pixel on its side of 0, so
nothing is lost for binary masks.
"""

import numpy as np

from argenseg_jax.mask_transforms import mask_to_vae_input
from data_pipelines.synthetic_scenes import Referent, Scene, SyntheticScenes


def all_objects_mask(scene: Scene) -> np.ndarray:
  """bool `[H, W]`: the union of every object of `scene`."""
  return scene.mask(Referent('all objects', '', tuple(range(len(scene.objects)))))


class SyntheticMasks:
  """Random-access source of `{'mask': bool [R, R], 'grey': uint8 [R, R]}`; item `i`
  depends only on `(seed, i)`."""

  def __init__(self, num: int, seed: int, resolution: int, crowd_fraction: float = 0.0,
               crowd_objects: tuple[int, int] = (6, 10)):
    self.resolution = resolution
    self.referents = SyntheticScenes(num, seed, size=resolution)
    self.crowds = SyntheticScenes(num, seed, size=resolution, num_objects=tuple(crowd_objects))
    self.crowded = np.random.default_rng(seed).random(num) < crowd_fraction

  def __len__(self) -> int:
    return len(self.crowded)

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    mask = (all_objects_mask(self.crowds.scene(i)) if self.crowded[i]
            else self.referents.scene(i).mask())
    grey = mask_to_vae_input(mask.astype(np.uint8) * 255, self.resolution)[..., 0]
    return dict(mask=mask, grey=np.rint((grey + 1) / 2 * 255).astype(np.uint8))


def mask_inputs(config) -> tuple[SyntheticMasks, SyntheticMasks]:
  """`(train, held_out)` masks of a mask VQ-VAE train config (`config.data`: num_masks,
  seed, crowd_fraction, crowd_objects, held_out_masks, held_out_seed)."""
  d, res = config.data, config.model.resolution
  return (SyntheticMasks(d.num_masks, d.seed, res, d.crowd_fraction, d.crowd_objects),
          SyntheticMasks(d.held_out_masks, d.held_out_seed, res))
