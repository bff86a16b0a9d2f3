"""`RefSample`: what every referring-segmentation reader yields.

Readers (PSALM jsonl, RefCOCO `refs(*).p`, gRefCOCO, custom jsonl, the tfds builder, the
synthetic scene generator) are random-access sources of `RefSample`s; the grain chain in
`data_pipelines/train_pipeline.py` turns them into model inputs. Masks are decoded by
the reader (they are cheap); the image stays a path until a worker reads it.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class RefSample:
  """One training / evaluation example.

  image: path of an image file, or uint8 `[H, W, 3]`; None for a text-only conversation.
  sentences: referring expressions of the target, all describing the same mask(s).
  masks: bool `[H, W]`, one per `<mask>` of the answer (an all-False mask is a
    no-target answer; a multi-target expression has the union of its objects).
  origin: `'file:line'` (or another locator) named by every error about this sample.
  conversation: explicit `[{'from': 'human'|'gpt', 'value': ...}]` turns; when None the
    prompt template builds them from `sentences` (or `dialogue`) in the model's style.
  dialogue: one expression per mask, asked one after another about the image (a
    multi-turn referring dialogue; `sentences` holds the first); None: one question.
  group: a name among the source's `groups` (e.g. the synthetic template) under which
    the evaluation also reports the metrics; '' for none.
  """
  image: str | np.ndarray | None
  sentences: list[str]
  masks: list[np.ndarray]
  origin: str
  conversation: list[dict] | None = None
  dialogue: list[str] | None = None
  group: str = ''

  @property
  def has_target(self) -> bool:
    return any(bool(m.any()) for m in self.masks)
