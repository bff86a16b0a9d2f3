"""Train the bundled small ARGenSeg from scratch on synthetic scenes.

  argenseg train --config configs/train_bundled.py --workdir /tmp/bundled

reproduces `argenseg_jax/assets/argenseg_small` (`argenseg:variant=small`: trainable ViT
2 x 64 at 128 px, InternLM2 4 x 128, byte vocabulary, the frozen mask VQ-VAE of
`argenseg_jax/assets/mask_vqvae`, reproduced by `configs/mask_vqvae.py`;
`image_tokenizer=DIR` uses another): 3000 steps of 64 one-object scenes
(`task=one_object`: "the <colour> <shape>", always present), AdamW 1e-3, 5 % warmup,
cosine. It took 3.6 min on one H200 (14 steps/s, `workers=6` data processes); on
2 CPU cores a step of 64 takes ~12 s (~10 h). Expected, held out (`argenseg eval
--checkpoint /tmp/bundled/export --data
synthetic:seed=1,n=500,size=128,objects=1,templates=colour_shape,no_target_fraction=0`):
cIoU 0.81, gIoU 0.71, precision@0.5 0.86; `python -m argenseg_jax.evaluation.grounding`
on those scenes: visual loss 0.52 with the right images, 3.57 with swapped ones.

`task=full` trains on the whole grammar (2-6 objects, every template, absent objects).
It does not ground within the same budget: 3000 steps give a model that ignores the
image (loss 0.69 right vs 0.69 swapped; held-out cIoU 0.003, almost every mask
empty), and 4000 steps, from scratch or after 1100 one-object steps, only start to use
it (0.62 vs 0.64, 0.64 vs 0.72; cIoU 0.02). `questions=N` trains on N questions per
scene (multi-turn).
See the README (The bundled model).
"""

import pathlib

from argenseg_jax import config_args
from argenseg_jax.training.defaults import base_config

TASKS = {'one_object': ',objects=1,templates=colour_shape,no_target_fraction=0', 'full': ''}
MASK_VQVAE = pathlib.Path(__file__).resolve().parent.parent / 'argenseg_jax' / 'assets' / 'mask_vqvae'


def get_config(arg=None):
  args = config_args.parse_arg(arg, steps=3000, samples=400000, batch_size=64, lr=1e-3,
                               questions=1, task='one_object', workers=6,
                               image_tokenizer=str(MASK_VQVAE))
  if args.task not in TASKS:
    raise ValueError(f'task={args.task}: expected one of {sorted(TASKS)}.')
  config = base_config()
  config.model = 'argenseg:variant=small'
  config.image_tokenizer = args.image_tokenizer
  config.frozen = ('image_tokenizer',)
  config.data.spec = (f'synthetic:seed=0,n={args.samples},size=128,questions={args.questions}'
                      + TASKS[args.task])
  # one question: 368-382 tokens; each follow-up question and answer adds up to 320
  config.data.length_buckets = (384 + 320 * (args.questions - 1),)
  config.data.max_masks = args.questions
  config.data.workers = args.workers
  config.update(batch_size=args.batch_size, num_steps=args.steps, compute_dtype='float32',
                remat=False, log_every=50)
  config.optimizer.update(lr=args.lr, warmup_ratio=0.05, weight_decay=0.01)
  config.checkpoint.update(every=500, keep=1)
  return config
