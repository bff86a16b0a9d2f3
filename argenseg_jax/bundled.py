"""What ships inside the package: the small ARGenSeg, its mask VQ-VAE and a demo scene.

  argenseg segment --expression "the big red triangle"     # bundled model, bundled scene

`MODEL` is `argenseg:variant=small` trained from scratch on synthetic referring scenes by
`configs/train_bundled.py` (its docstring has the command and the expected metrics);
`MASK_VQVAE` is its frozen image tokenizer, trained by `configs/mask_vqvae.py`. `SCENE` is
scene 6 of `synthetic:seed=2027` (held out: the model trained on seed 0).
"""

import pathlib

ASSETS = pathlib.Path(__file__).resolve().parent / 'assets'
MODEL = ASSETS / 'argenseg_small'
MASK_VQVAE = ASSETS / 'mask_vqvae'
SCENE = ASSETS / 'scene.png'
SCENE_EXPRESSION = 'the big red triangle'
