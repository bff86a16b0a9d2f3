"""Train the bundled small ARGenSeg from scratch on synthetic scenes (2 CPU cores).

  argenseg train --config configs/train_bundled.py --workdir /tmp/bundled

`argenseg:variant=small` (trainable ViT 2 x 64, InternLM2 4 x 128, byte vocabulary, 2D
sin-cos initial position tables) on `synthetic:seed=0` scenes at 128 px, with the frozen
mask VQ-VAE shipped in `argenseg_jax/assets/mask_vqvae` (reproduced by
`configs/mask_vqvae.py`; `image_tokenizer=DIR` uses another). `questions=N` trains on
N questions per scene (multi-turn examples). ~1 s/step at batch 8 on 2 CPU cores.

Status: the recipe does not yet give a model worth shipping. In 600-1500 steps (batch
8-16, 10-30 min) the answer text is learned (text loss -> 0.002) and the visual-token loss
falls from 5.5 to ~1.2-1.5, but the model ignores the image: its teacher-forced loss is
the same with the right, another or a zero image, greedy decoding gives the same
(empty) mask for every question, and training drives the projected image tokens
towards one vector (mean cosine 0.80 at init -> 0.93-0.99). Tried: trainable or frozen
ViT, 1-3 questions per scene, 2D sin-cos position tables, expression before the image with
rope_theta 1e4 and a small projector output; on one-object scenes even oracle image
tokens go unused in 300 steps (the decoder does not learn to attend to image tokens).
`python -m argenseg_jax.evaluation.grounding` measures this on any export. See the README
(The bundled model).
"""

import pathlib

from argenseg_jax import config_args
from argenseg_jax.training.defaults import base_config

MASK_VQVAE = pathlib.Path(__file__).resolve().parent.parent / 'argenseg_jax' / 'assets' / 'mask_vqvae'


def get_config(arg=None):
  args = config_args.parse_arg(arg, steps=600, samples=50000, batch_size=16, lr=2e-3,
                               questions=1, image_tokenizer=str(MASK_VQVAE))
  config = base_config()
  config.model = 'argenseg:variant=small'
  config.image_tokenizer = args.image_tokenizer
  config.frozen = ('image_tokenizer',)
  config.data.spec = f'synthetic:seed=0,n={args.samples},size=128,questions={args.questions}'
  # one question: 368-382 tokens; each follow-up question and answer adds up to 320
  config.data.length_buckets = (384 + 320 * (args.questions - 1),)
  config.data.max_masks = args.questions
  config.data.workers = 1
  config.update(batch_size=args.batch_size, num_steps=args.steps, compute_dtype='float32',
                remat=False, log_every=10)
  config.optimizer.update(lr=args.lr, warmup_ratio=0.05, weight_decay=0.01)
  config.checkpoint.update(every=100, keep=1)
  return config
