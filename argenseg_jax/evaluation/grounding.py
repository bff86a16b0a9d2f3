"""Does a trained ARGenSeg use its image and its words? Teacher-forced visual-token loss
and per-scale code accuracy with each sample's own image and expression, with the next
sample's image, and with the next sample's expression.

  argenseg grounding --checkpoint DIR --data SPEC [--samples 32]

A model that grounds gets worse when the images are swapped, and one that refers gets
worse when the expressions are. One that has only learned the codes' statistics (and
refines each scale from the teacher-forced previous scales) scores the same either way,
although its loss may look good; one that segments the salient object whatever is asked
ignores the expression. One forward pass per batch, so a training recipe can be judged
after a few hundred steps instead of a full run and `argenseg eval`.
"""

import dataclasses
import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from argenseg_jax import pretrained, user_input
from argenseg_jax.tokenizer import load_tokenizer
from data_pipelines import data_spec, train_pipeline

BUCKETS = tuple(range(128, 16385, 128))


@dataclasses.dataclass(frozen=True)
class Dependence:
  """Visual-token loss and per-scale accuracy `[S]` with own and swapped images (and,
  when measured, with shuffled expressions)."""
  loss_own: float
  loss_swapped: float
  accuracy_own: tuple[float, ...]
  accuracy_swapped: tuple[float, ...]
  loss_shuffled: float | None = None
  accuracy_shuffled: tuple[float, ...] | None = None


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


def _rounded(accuracy: jax.Array) -> tuple[float, ...]:
  return tuple(round(float(a), 4) for a in accuracy)


def image_dependence(model, batch: dict, shuffled: dict | None = None) -> Dependence:
  """`batch`: a `train_pipeline.pad_batch` of >= 2 examples with one tile each; the
  swapped run gives row i the image of row i + 1 (both runs share one compiled pass).
  `shuffled`, if given, is the same examples with other expressions (`load_batches`)."""
  if batch['pixels'].shape[0] != batch['ids'].shape[0] or batch['ids'].shape[0] < 2:
    raise ValueError('image_dependence needs >= 2 examples with one image tile each.')
  graphdef, state = nnx.split(model)
  batch = {k: jnp.asarray(v) for k, v in batch.items()}
  loss_own, acc_own = _teacher_forced(graphdef, state, batch, batch['pixels'])
  loss_swapped, acc_swapped = _teacher_forced(graphdef, state, batch,
                                              jnp.roll(batch['pixels'], -1, axis=0))
  extra = {}
  if shuffled is not None:
    shuffled = {k: jnp.asarray(v) for k, v in shuffled.items()}
    loss, acc = _teacher_forced(graphdef, state, shuffled, shuffled['pixels'])
    extra = dict(loss_shuffled=float(loss), accuracy_shuffled=_rounded(acc))
  return Dependence(float(loss_own), float(loss_swapped), _rounded(acc_own),
                    _rounded(acc_swapped), **extra)


def load_batches(checkpoint: str, spec_text: str, samples: int):
  """`(model, batch, shuffled)`: the checkpoint and its first `samples` examples of
  `spec_text` encoded as in training (one mask per example), and the same examples with
  the expressions of sample i + 1 asked about sample i's image (its own target kept)."""
  source = data_spec.open_source(spec_text)
  if len(source) < samples:
    raise ValueError(f'{spec_text} has {len(source)} samples, fewer than --samples {samples}.')
  model, cfg = pretrained.load_pretrained(checkpoint)
  spec = train_pipeline.spec_for(cfg, length_buckets=BUCKETS, max_masks=1)
  encode = train_pipeline.EncodeExample(load_tokenizer(checkpoint), spec)
  chosen = [source[i] for i in range(samples)]
  for sample in chosen:
    if len(sample.masks) != 1 or sample.conversation or sample.dialogue:
      raise ValueError(f'{sample.origin}: the check reads samples of one expression and '
                       'one mask.')
  others = chosen[1:] + chosen[:1]
  shuffled = [dataclasses.replace(s, sentences=o.sentences) for s, o in zip(chosen, others)]
  batch, shuffled = (train_pipeline.pad_batch([encode.map(s) for s in group], spec)
                     for group in (chosen, shuffled))
  return model, batch, shuffled


def add_arguments(parser) -> None:
  """The `argenseg grounding` arguments (argparse), read by `run`."""
  parser.add_argument('--checkpoint', required=True, help='an exported ARGenSeg directory')
  parser.add_argument('--data', required=True, help='data spec, e.g. synthetic:seed=1,n=32')
  parser.add_argument('--samples', type=user_input.positive_int, default=32)


def run(args) -> int:
  """`argenseg grounding`: prints the three losses and the per-scale accuracies."""
  dep = image_dependence(*load_batches(args.checkpoint, args.data, args.samples))
  print(f'visual-token loss: own images and expressions {dep.loss_own:.4f}, swapped '
        f'images {dep.loss_swapped:.4f}, shuffled expressions {dep.loss_shuffled:.4f}')
  print(f'code accuracy per scale, own:      {list(dep.accuracy_own)}')
  print(f'code accuracy per scale, swapped:  {list(dep.accuracy_swapped)}')
  print(f'code accuracy per scale, shuffled: {list(dep.accuracy_shuffled)}')
  return 0


if __name__ == '__main__':
  from argenseg_jax import cli  # pylint: disable=import-outside-toplevel
  sys.exit(cli.main(['grounding', *sys.argv[1:]]))
