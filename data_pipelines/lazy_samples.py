"""Parsed annotations kept small and picklable; masks are decoded on access.

Readers parse their files into records once; `RecordSource[i]` decodes record `i` into
a `RefSample` (image left as a path, checked to exist and to match the mask size).
`RecordSource` is what `grain.MapDataset.source(...)` takes: `len()`, `[i]`, pickling.
A record's `load(draw)` takes a draw, a tuple of ints (`data_pipelines/mixture.py`: seed,
epoch, position): records with a random choice (a panoptic entry's class) seed it with
their origin and the draw; the others ignore it.
"""

import dataclasses

import numpy as np

from argenseg_jax.ref_sample import RefSample
from data_pipelines.coco_masks import union_mask
from data_pipelines.mask_files import read_mask
from data_pipelines.reader_checks import require_image, require_samples


@dataclasses.dataclass(frozen=True)
class CocoRecord:
  """One target given by COCO `segmentation`s (their union; none -> all-False)."""
  image: str
  sentences: tuple[str, ...]
  origin: str
  height: int
  width: int
  segmentations: tuple
  num_masks = 1

  def load(self, draw: tuple[int, ...] = ()) -> RefSample:
    del draw
    image = require_image(self.image, self.origin, (self.height, self.width))
    mask = union_mask(self.segmentations, self.height, self.width, self.origin)
    return RefSample(image, list(self.sentences), [mask], self.origin)


@dataclasses.dataclass(frozen=True)
class MaskFileRecord:
  """Masks in image files: one per `<mask>` of `conversation`, or with `merge` their
  union as the single answer to `sentences`."""
  image: str
  sentences: tuple[str, ...]
  origin: str
  mask_paths: tuple[str, ...]
  conversation: tuple[dict, ...] | None = None
  merge: bool = False

  @property
  def num_masks(self) -> int:
    return min(len(self.mask_paths), 1) if self.merge else len(self.mask_paths)

  def load(self, draw: tuple[int, ...] = ()) -> RefSample:
    del draw
    masks = [read_mask(path, self.origin) for path in self.mask_paths]
    shapes = sorted({m.shape for m in masks})
    if len(shapes) > 1:
      raise ValueError(f'{self.origin}: the masks differ in size (H, W): {shapes}.')
    if self.merge and masks:
      masks = [np.logical_or.reduce(masks)]
    image = require_image(self.image, self.origin, shapes[0] if shapes else None)
    conversation = [dict(t) for t in self.conversation] if self.conversation else None
    return RefSample(image, list(self.sentences), masks, self.origin, conversation)


@dataclasses.dataclass(frozen=True)
class TextRecord:
  """A conversation without an image (text-only data: text loss only)."""
  origin: str
  conversation: tuple[dict, ...]
  num_masks = 0

  def load(self, draw: tuple[int, ...] = ()) -> RefSample:
    del draw
    return RefSample(None, [], [], self.origin, [dict(t) for t in self.conversation])


class RecordSource:
  """A random-access source of `RefSample`s over parsed records.

  skipped: `[(origin, reason)]` of the entries left out while parsing.
  """

  def __init__(self, records: list, skipped: list[tuple[str, str]], source,
               split: str | None = None):
    require_samples(records, source, split, skipped)
    self.records = records
    self.skipped = skipped
    self.source = str(source)

  def __len__(self) -> int:
    return len(self.records)

  def __getitem__(self, index: int) -> RefSample:
    return self.records[index].load()

  def sample(self, index: int, draw: tuple[int, ...]) -> RefSample:
    """Record `index` under draw `draw` (see the module docstring)."""
    return self.records[index].load(draw)

  def __repr__(self) -> str:
    return (f'{type(self).__name__}({self.source!r}, {len(self)} samples, '
            f'{len(self.skipped)} skipped)')
