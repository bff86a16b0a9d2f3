"""Train the small ARGenSeg from scratch on synthetic scenes.

  argenseg train --config configs/train_bundled.py:recipe=shipped --workdir /tmp/bundled

reproduces `argenseg_jax/assets/argenseg_small` (`argenseg:variant=small` with the
original's choices: byte vocabulary, InternVL's question, 0.02 init, mean visual loss;
trainable ViT 2 x 64 at 128 px, InternLM2 4 x 128, the frozen mask VQ-VAE of
`argenseg_jax/assets/mask_vqvae`, reproduced by `configs/mask_vqvae.py`;
`image_tokenizer=DIR` uses another): 3000 steps of 64 one-object scenes
(`task=one_object`: "the <colour> <shape>", always present), AdamW 1e-3, 5 % warmup,
cosine. It took 3.6 min on one H200 (14 steps/s, `workers=6` data processes); on
2 CPU cores a step of 64 takes 8 s (~7 h). Expected, held out (`argenseg eval
--checkpoint /tmp/bundled/export --data
synthetic:seed=1,n=500,size=128,objects=1,templates=colour_shape,no_target_fraction=0`):
cIoU 0.81, gIoU 0.71, precision@0.5 0.86; `argenseg grounding` on those scenes: visual
loss 0.52 with the right images, 3.57 with swapped ones.

`recipe=words` (the default) is the recipe for the whole grammar (`task=full`: 2-6
objects, every template, absent objects) with what measurably shortened learning
there (README, The bundled model): `argenseg:variant=small` as it now stands (one token
per word, the expression before the image, image tokens and mask slots in one 2D
sine-cosine frame with first-layer heads that start by matching cells, width-scaled init,
every scale of the visual loss weighing the same), batch 16 (a step of 16 takes ~0.95 s
on 2 CPU cores, 17 examples/s against 8 for the shipped recipe's 384-token examples),
AdamW 2e-3, 3600 steps (~1 h). It starts to read its image after ~10-15k examples;
at step 2700 (43.2k examples, ~45 min) held out (`synthetic:seed=1,n=500,size=128`):
cIoU 0.253, gIoU 0.265, precision@0.5 0.238, N-acc 0.835, T-acc 0.563, far from the
target (cIoU >= 0.85, N-acc >= 0.9); the measured curve is in the README.

Overrides (the recipe's value where not given): `steps`, `batch_size`, `lr`, `task`,
`workers`, `questions=N` (N questions per scene, multi-turn), `export_every=N` (an
inference checkpoint every N steps, for `benchmarks/learning_curve.py`).
See the README (The bundled model).
"""

from argenseg_jax import bundled, config_args
from argenseg_jax.training.defaults import base_config

TASKS = {'one_object': ',objects=1,templates=colour_shape,no_target_fraction=0', 'full': ''}
# length: the bucket of one question and what each follow-up question and answer adds
RECIPES = {
    'words': dict(model='argenseg:variant=small', steps=3600, batch_size=16, lr=2e-3,
                  task='full', workers=1, length=(232, 160), samples=0),
    'shipped': dict(model='argenseg:variant=small,vocabulary=bytes,question_style=internvl,'
                          'token_pos=none,cell_heads=0,visual_loss=tokens,init=released',
                    steps=3000, batch_size=64, lr=1e-3, task='one_object', workers=6,
                    length=(384, 320), samples=400_000),
}


def get_config(arg=None):
  args = config_args.parse_arg(arg, recipe='words', steps=0, batch_size=0, lr=0.0, task='',
                               workers=-1, warmup=0.05, questions=1, export_every=0,
                               image_tokenizer=str(bundled.MASK_VQVAE))
  if args.recipe not in RECIPES:
    raise ValueError(f'recipe={args.recipe}: expected one of {sorted(RECIPES)}.')
  recipe = RECIPES[args.recipe]
  steps, batch_size, lr, task = (
      getattr(args, k) or recipe[k] for k in ('steps', 'batch_size', 'lr', 'task'))
  workers = recipe['workers'] if args.workers < 0 else args.workers
  if task not in TASKS:
    raise ValueError(f'task={task}: expected one of {sorted(TASKS)}.')
  config = base_config()
  config.model = recipe['model']
  config.image_tokenizer = args.image_tokenizer
  config.frozen = ('image_tokenizer',)
  samples = recipe['samples'] or steps * batch_size  # (the shuffle depends on it)
  config.data.spec = (f'synthetic:seed=0,n={samples},size=128,questions={args.questions}'
                      + TASKS[task])
  first, follow_up = recipe['length']
  config.data.length_buckets = (first + follow_up * (args.questions - 1),)
  config.data.max_masks = args.questions
  config.data.workers = workers
  config.update(batch_size=batch_size, num_steps=steps, compute_dtype='float32',
                remat=False, log_every=50, export_every=args.export_every)
  config.optimizer.update(lr=lr, warmup_ratio=args.warmup, weight_decay=0.01)
  config.checkpoint.update(every=500, keep=1)
  return config
