"""The training mixture of a meta file: every source's samples, in the original's proportions.

`Mixture(meta, base_dir, seed)` is one random-access source (`len`, `[k]` -> RefSample)
over all sources of the meta file (`meta_file.py`), each opened with `PsalmReader`
(referring, gRefCOCO, ADE20K classes, LISA instance lists, COCO panoptic, understanding
and text-only conversations). Like the original's `ConcatDataset`, source i fills
`count_i` consecutive indices:
  no `weight`: count_i = n_i x repeat_time (n_i entries read from its file), or for
               repeat_time < 1 its first int(n_i x repeat_time) entries (of those kept:
               the original slices the file's lines before skipping any);
  `weight`:    count_i = round(N x weight_i / sum(weights)) with N the unweighted total, its
               entries taken in a seeded order, cycling when count_i > n_i.
The grain chain (`train_pipeline.sample_dataset`) shuffles the whole index space every
epoch, repeats it and shards it by process, so an epoch holds each source in exactly
these proportions and the iterator state saved with a checkpoint restores the position
in the mixture exactly. `epoch_sample(k, epoch)` loads index k (source i, position j)
under the draw `(seed, epoch, j)`: a panoptic entry draws its class from it, and
`data_augment` its JPEG quality (from another stream), so both change with every repeat
and epoch and are the same whenever that sample is drawn again (a resumed run). A
weighted source drawn less often than it has entries uses the same seeded subset every
epoch. Every sample's `group` is its source name.

`Mixture(..., training=False)` is the evaluation view (`--data meta:FILE.json`): every
source once, segmentation entries only (sources without any are left out and named in
`left_out`), metrics reported per source.
"""

import io
import logging

import numpy as np
from PIL import Image

from argenseg_jax import image_io
from argenseg_jax.ref_sample import RefSample
from data_pipelines.meta_file import MetaSource, read_meta
from data_pipelines.panoptic import JPEG_DRAW, draw_generator
from data_pipelines.psalm_reader import PsalmReader
from data_pipelines.reader_checks import EmptyDatasetError

JPEG_QUALITIES = (75, 100)  # inclusive range of the original's augmentation


def jpeg_degraded(image, rng: np.random.Generator) -> np.ndarray:
  """The image re-encoded as JPEG at a quality drawn from `JPEG_QUALITIES` -> uint8
  `[H, W, 3]`."""
  buffer = io.BytesIO()
  image_io.as_rgb(image).save(buffer, format='JPEG',
                              quality=int(rng.integers(JPEG_QUALITIES[0],
                                                       JPEG_QUALITIES[1] + 1)))
  buffer.seek(0)
  with Image.open(buffer) as img:
    return np.asarray(img.convert('RGB'))


def _counts(meta: str, sources: list[MetaSource], sizes: list[int],
            training: bool) -> list[int]:
  if not training:
    return list(sizes)
  natural = []
  for s, n in zip(sources, sizes):
    count = n * s.repeat_time if s.repeat_time >= 1 else int(n * s.repeat_time)
    if count == 0:
      raise ValueError(f'{meta}: source {s.name!r}: repeat_time {s.repeat_time} of {n} '
                       f'entries keeps none; raise it.')
    natural.append(int(count))
  if sources[0].weight is None:
    return natural
  total, weights = sum(natural), np.array([s.weight for s in sources])
  return [max(1, round(total * w / weights.sum())) for w in weights]


class Mixture:
  """Random-access source over a meta file's sources (see the module docstring)."""

  def __init__(self, meta, base_dir='', seed: int = 0, training: bool = True):
    self.meta = str(meta)
    self.sources, self.readers, self.left_out = [], [], []
    for s in read_meta(meta, base_dir):
      try:
        self.readers.append(PsalmReader(s.annotation, s.root, mask_root=s.base_dir,
                                        training=training))
        self.sources.append(s)
      except EmptyDatasetError as e:
        if training:
          raise EmptyDatasetError(f'{self.meta}: source {s.name!r}: {e}') from None
        self.left_out.append(s.name)  # no entry with a mask: nothing to evaluate
    if not self.sources:
      raise EmptyDatasetError(f'{self.meta}: no source has an entry with a mask.')
    sizes = [len(r) for r in self.readers]
    self.counts = _counts(self.meta, self.sources, sizes, training)
    self.starts = np.cumsum([0] + self.counts)
    self.training = training
    self.seed = seed
    weighted = training and self.sources[0].weight is not None
    self.orders = [np.random.default_rng([seed, i]).permutation(n) if weighted else None
                   for i, n in enumerate(sizes)]
    for s, r in zip(self.sources, self.readers):
      lines = len(r) + len(r.skipped)
      if s.length is not None and s.length != lines:
        logging.warning('%s: source %r declares length %d, its file holds %d entries',
                        self.meta, s.name, s.length, lines)

  def __len__(self) -> int:
    return int(self.starts[-1])

  @property
  def groups(self) -> tuple[str, ...]:
    """The source names, which the samples' `group` holds."""
    return tuple(s.name for s in self.sources)

  @property
  def shares(self) -> dict[str, float]:
    """Each source's share of an epoch."""
    return {s.name: c / len(self) for s, c in zip(self.sources, self.counts)}

  def locate(self, k: int) -> tuple[int, int]:
    """Index `k` -> (source, position in the source)."""
    k = int(k)
    if not 0 <= k < len(self):
      raise IndexError(f'index {k} out of range for {len(self)} samples.')
    i = int(np.searchsorted(self.starts, k, side='right')) - 1
    return i, k - int(self.starts[i])

  def epoch_sample(self, k: int, epoch: int) -> RefSample:
    """Index `k` in epoch `epoch` (see the module docstring)."""
    i, j = self.locate(k)
    reader, order = self.readers[i], self.orders[i]
    index = j % len(reader)
    draw = (self.seed, epoch, j)
    sample = reader.sample(int(order[index]) if order is not None else index, draw)
    sample.group = self.sources[i].name
    if self.training and self.sources[i].data_augment and sample.image is not None:
      sample.image = jpeg_degraded(sample.image, draw_generator(sample.origin, draw, JPEG_DRAW))
    return sample

  def __getitem__(self, k: int) -> RefSample:
    return self.epoch_sample(k, 0)

  def check_max_masks(self, max_masks: int) -> None:
    """Raises, before any training, if an answer holds more than `max_masks` masks."""
    for s, r in zip(self.sources, self.readers):
      most = max(record.num_masks for record in r.records)
      if most > max_masks:
        raise ValueError(f'{self.meta}: source {s.name!r} has answers with {most} masks, '
                         f'more than config.data.max_masks={max_masks}; raise it '
                         f'(--config.data.max_masks={most}).')

  def describe(self) -> list[str]:
    """One line per source: entries read, skipped, repeat_time / weight, samples, share."""
    lines = []
    for s, r, c in zip(self.sources, self.readers, self.counts):
      mix = f'weight {s.weight:g}' if s.weight is not None else f'repeat {s.repeat_time:g}'
      lines.append(f'{s.name}: {len(r)} entries ({len(r.skipped)} skipped), {mix} -> '
                   f'{c} samples per epoch ({c / len(self):.1%})')
    return lines

  def __repr__(self) -> str:
    return f'Mixture({self.meta!r}, {len(self.sources)} sources, {len(self)} samples)'
