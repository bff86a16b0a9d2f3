"""Does a trained ARGenSeg use its image? Teacher-forced visual-token loss and per-scale
code accuracy, with each sample's own image and with the next sample's image.

  python -m argenseg_jax.evaluation.grounding --checkpoint DIR --data SPEC [--samples 32]

A model that grounds gets worse when the images are swapped. One that has only learned
the codes' statistics (and refines each scale from the teacher-forced previous scales)
scores the same either way, although its loss may look good. One forward pass per
batch, so a training recipe can be judged after a few hundred steps instead of a full
run and `argenseg eval`.
"""

import argparse
import dataclasses
import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from argenseg_jax import pretrained
from argenseg_jax.tokenizer import load_tokenizer
from data_pipelines import data_spec, train_pipeline

BUCKETS = tuple(range(128, 16385, 128))


@dataclasses.dataclass(frozen=True)
class Dependence:
  """Visual-token loss and per-scale accuracy `[S]` with own and swapped images."""
  loss_own: float
  loss_swapped: float
  accuracy_own: tuple[float, ...]
  accuracy_swapped: tuple[float, ...]


def scale_accuracy(pred: jax.Array, labels: jax.Array, is_visual: jax.Array,
                   level_of_slot: np.ndarray) -> jax.Array:
  """Fraction of correct visual tokens per scale, `[S]`.

  pred / labels / is_visual: `[B, N]`; the visual positions of a row are its masks'
  slots in order, `len(level_of_slot)` per mask."""
  slot = (jnp.cumsum(is_visual, axis=1) - 1) % len(level_of_slot)
  onehot = jax.nn.one_hot(jnp.asarray(level_of_slot)[slot], int(level_of_slot.max()) + 1)
  onehot = onehot * is_visual[..., None]
  correct = ((pred == labels)[..., None] * onehot).sum((0, 1))
  return correct / jnp.maximum(onehot.sum((0, 1)), 1)


@functools.partial(jax.jit, static_argnums=0)
def _teacher_forced(graphdef, state, batch: dict, pixels: jax.Array
                    ) -> tuple[jax.Array, jax.Array]:
  """Visual-token loss and per-scale accuracy of one teacher-forced pass on `pixels`."""
  model = nnx.merge(graphdef, state)
  out = model.train_forward(batch['ids'], batch['labels'], batch['token_mask'], pixels,
                            batch['image_flags'], batch['masks'], batch['mask_flags'])
  labels = out.labels[:, 1:]
  is_visual = labels > model.tokens.mask_context_token_id
  accuracy = scale_accuracy(out.logits[:, :-1].argmax(-1), labels, is_visual,
                            model.level_of_slot)
  return out.gen_loss, accuracy


def image_dependence(model, batch: dict) -> Dependence:
  """`batch`: a `train_pipeline.pad_batch` of >= 2 examples with one tile each; the
  swapped run gives row i the image of row i + 1 (both runs share one compiled pass)."""
  if batch['pixels'].shape[0] != batch['ids'].shape[0] or batch['ids'].shape[0] < 2:
    raise ValueError('image_dependence needs >= 2 examples with one image tile each.')
  graphdef, state = nnx.split(model)
  batch = {k: jnp.asarray(v) for k, v in batch.items()}
  loss_own, acc_own = _teacher_forced(graphdef, state, batch, batch['pixels'])
  loss_swapped, acc_swapped = _teacher_forced(graphdef, state, batch,
                                              jnp.roll(batch['pixels'], -1, axis=0))
  return Dependence(float(loss_own), float(loss_swapped),
                    tuple(round(float(a), 4) for a in acc_own),
                    tuple(round(float(a), 4) for a in acc_swapped))


def load_batch(checkpoint: str, spec_text: str, samples: int):
  """`(model, batch)`: the checkpoint and its first `samples` examples of `spec_text`,
  encoded as in training (one mask per example)."""
  source = data_spec.open_source(spec_text)
  if len(source) < samples:
    raise ValueError(f'{spec_text} has {len(source)} samples, fewer than --samples {samples}.')
  model, cfg = pretrained.load_pretrained(checkpoint)
  spec = train_pipeline.spec_for(cfg, length_buckets=BUCKETS, max_masks=1)
  encode = train_pipeline.EncodeExample(load_tokenizer(checkpoint), spec)
  examples = []
  for i in range(samples):
    sample = source[i]
    if len(sample.masks) != 1:
      raise ValueError(f'{sample.origin}: {len(sample.masks)} masks; the check reads '
                       'one-mask samples.')
    examples.append(encode.map(sample))
  return model, train_pipeline.pad_batch(examples, spec)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--checkpoint', required=True, help='an exported ARGenSeg directory')
  parser.add_argument('--data', required=True, help='data spec, e.g. synthetic:seed=1,n=32')
  parser.add_argument('--samples', type=int, default=32)
  args = parser.parse_args(argv)
  model, batch = load_batch(args.checkpoint, args.data, args.samples)
  dep = image_dependence(model, batch)
  print(f'visual-token loss: own images {dep.loss_own:.4f}, swapped {dep.loss_swapped:.4f}')
  print(f'code accuracy per scale, own:     {list(dep.accuracy_own)}')
  print(f'code accuracy per scale, swapped: {list(dep.accuracy_swapped)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
