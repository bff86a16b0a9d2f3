"""The model behind the server: one `Segmenter` per compiled batch size, all sharing one
model's weights; a batch of requests runs on the smallest size that holds it (the other
rows are padding). A row's answer does not depend on its batch (`sampler.py`), so a
request gets the answer it would get alone, as long as its batch shares its prompt
width, which the batcher sees to (`Query.width`)."""

import copy
import dataclasses
from collections.abc import Sequence

import numpy as np
from PIL import Image

from argenseg_jax import chat_template
from argenseg_jax.segmenter import Result, Segmenter


@dataclasses.dataclass
class Query:
  """A checked request."""
  image: Image.Image                        # RGB
  question: str | chat_template.Referring
  width: int                                # prompt tokens, rounded up to the bucket
  overlay: bool                             # reply with the overlay
  previews: bool                            # reply with the decode of every scale
  timeout_s: float


@dataclasses.dataclass
class Answer:
  result: Result
  scales: np.ndarray | None  # uint8 [S, R, R, 3]: the first mask after each scale
  batch_size: int            # the compiled batch size that ran it
  rows: int                  # requests in that batch


def with_batch_size(seg: Segmenter, batch_size: int) -> Segmenter:
  """`seg` padding to `batch_size` rows, sharing its weights, tokenizer and VQ-VAE (a
  jitted sampler compiles once per row count)."""
  other = copy.copy(seg)
  other.batch_size = batch_size
  return other


class Engine:
  """Runs batches of `Query` on `segmenter`'s model at the compiled `batch_sizes`."""

  def __init__(self, segmenter: Segmenter, batch_sizes: Sequence[int]):
    self.batch_sizes = tuple(sorted(set(batch_sizes)))
    self.segmenters = {b: with_batch_size(segmenter, b) for b in self.batch_sizes}
    self.tokenizer = segmenter.tokenizer
    self._seg = segmenter

  def prompt_width(self, question: str | chat_template.Referring) -> int:
    """The padded width of `question`'s prompt; ValueError if it is empty or too long."""
    return self._seg.padded_width(len(self._seg.prompt_ids(question)))

  def run(self, queries: Sequence[Query]) -> list[Answer]:
    """One answer per query, in order; at most `max(batch_sizes)` queries of one width."""
    size = next(b for b in self.batch_sizes if b >= len(queries))
    seg = self.segmenters[size]
    results = seg.segment([q.image for q in queries], [q.question for q in queries])
    return [Answer(res, seg.decode_masks(res.codes[0][None], all_scales=True)[:, 0]
                   if q.previews and res.codes else None, size, len(queries))
            for q, res in zip(queries, results, strict=True)]

  def warm_up(self, image: Image.Image, question: chat_template.Referring) -> None:
    """Compiles every batch size (at `question`'s width) and the scale previews."""
    width = self.prompt_width(question)
    for size in self.batch_sizes:
      self.run([Query(image, question, width, False, True, 0.0)] * size)
