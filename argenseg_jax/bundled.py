"""What ships inside the package: the mask VQ-VAE of the synthetic domain and a demo mask.

  argenseg vae-roundtrip          # the scene's mask through the bundled mask VQ-VAE

`MASK_VQVAE` was trained by `configs/mask_vqvae.py` (its docstring has the command and the
held-out figures). `SCENE_MASK` is the union of the five objects of scene 6 of
`synthetic:seed=2027` (never used for training).
"""

import pathlib

ASSETS = pathlib.Path(__file__).resolve().parent / 'assets'
MASK_VQVAE = ASSETS / 'mask_vqvae'
SCENE_MASK = ASSETS / 'scene_mask.png'
