"""Does a trained ARGenSeg use its image and its words? Teacher-forced visual-token loss
and per-scale code accuracy with each sample's own image and expression, with the next
sample's image, and with the next sample's expression.

  argenseg grounding --checkpoint DIR --data SPEC [--samples 32]   (`cli/evaluate.py`)

A model that grounds gets worse when the images are swapped, and one that refers gets
worse when the expressions are. One that has only learned the codes' statistics (and
refines each scale from the teacher-forced previous scales) scores the same either way,
although its loss may look good; one that segments the salient object whatever is asked
ignores the expression. One forward pass per batch, so a training recipe can be judged
after a few hundred steps instead of a full run and `argenseg eval`.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


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
  logits = model.language_model.logits(out.hidden[:, :-1])
  accuracy = scale_accuracy(logits.argmax(-1), labels, is_visual,
                            model.level_of_slot)
  return out.gen_loss, accuracy


def _rounded(accuracy: jax.Array) -> tuple[float, ...]:
  return tuple(round(float(a), 4) for a in accuracy)


def image_dependence(model, batch: dict, shuffled: dict | None = None) -> Dependence:
  """`batch`: a `train_pipeline.pad_batch` of >= 2 examples with one tile each; the
  swapped run gives row i the image of row i + 1 (both runs share one compiled pass).
  `shuffled`, if given, is the same examples with other expressions
  (`cli.evaluate.load_batches`)."""
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
