"""What ships inside the package: a small ARGenSeg, the mask VQ-VAE of the synthetic
domain, and a demo scene.

  argenseg segment                # the bundled model on the bundled scene
  argenseg vae-roundtrip          # a scene's mask through the bundled mask VQ-VAE

`ARGENSEG_SMALL` (`argenseg:variant=small`, 1.9 M parameters, its frozen mask VQ-VAE included)
was trained by `configs/train_bundled.py` on one-object synthetic scenes (its docstring
has the command and the held-out figures). `MASK_VQVAE` was trained by
`configs/mask_vqvae.py`; `SYNTHETIC_VOCAB` is the word vocabulary of the small variant
trained from scratch (`data_pipelines/synthetic_vocab.py`). `SCENE` is scene
`SCENE_INDEX` of `SCENE_SOURCE`, asked with
`SCENE_EXPRESSION`, its ground truth `SCENE_TARGET`; `SCENE_MASK` is the union of the
five objects of scene 6 of `synthetic:seed=2027`. Seed 2027 is never used for training.
"""

import pathlib

ASSETS = pathlib.Path(__file__).resolve().parent / 'assets'
ARGENSEG_SMALL = ASSETS / 'argenseg_small'
MASK_VQVAE = ASSETS / 'mask_vqvae'
SYNTHETIC_VOCAB = ASSETS / 'synthetic_vocab.model'  # `data_pipelines/synthetic_vocab.py`
MIXTURE_TINY = ASSETS / 'mixture_tiny'  # `data_pipelines/miniature_mixture.py`
SCENE = ASSETS / 'scene.png'
SCENE_SOURCE = 'synthetic:seed=2027,objects=1,templates=colour_shape,no_target_fraction=0'
SCENE_INDEX = 0
SCENE_EXPRESSION = 'the red circle'
SCENE_TARGET = ASSETS / 'scene_target.png'
SCENE_MASK = ASSETS / 'scene_mask.png'
