"""COCO-panoptic entries: one class per sample, its pixels the mask (ARGenSeg's `coco_seg`).

An entry (InternVL jsonl, as PSALM converts COCO panoptic):
  {"image": "img.jpg", "mask": "pan.png", "dataset": "coco_seg",
   "seg_info": [{"id": 3226956, "category_id": 45}, ...],
   "conversations": [{"from": "human", "value": "<image>\\n Please segment {} in this image."},
                     {"from": "gpt", "value": "Sure, the segmentation result: <mask>."}]}

The panoptic PNG stores each pixel's segment id as R + 256 G + 256^2 B (COCO's `rgb2id`);
a one-channel PNG (8 or 16 bit) holds the ids themselves; palette PNGs are refused. A
sample draws one category among those of `seg_info` (uniformly over the distinct
categories, as the original), with a generator seeded by the entry (file name and line)
and the draw (the mixture's seed, epoch and position: reproducible, new at every repeat
and epoch); the mask is every pixel of every segment of that category (none: an error
naming the entry) and the first human turn's `{}` becomes the category's name.

Names come from `coco_panoptic_categories.json` (the 133 public COCO panoptic categories,
cocodataset/panopticapi), under one of two numberings: `coco`, the official ids (1-200
with gaps), or `contiguous`, 0-132 in the same order (detectron2's; the original indexes
its class-name list with `category_id`, and its example entry's id 45, "bowl", is not an
official id). `numbering_of` decides per annotation file from the ids it holds.
"""

import dataclasses
import functools
import json
import logging
import pathlib
import zlib

import numpy as np
from PIL import Image

from argenseg_jax.ref_sample import RefSample
from data_pipelines.mask_files import read_pixels
from data_pipelines.reader_checks import require_image

CLASS_SLOT = '{}'
CATEGORIES_FILE = pathlib.Path(__file__).with_name('coco_panoptic_categories.json')
NUMBERINGS = ('coco', 'contiguous')
ID_MODES = ('L', 'I', 'I;16', 'I;16B', 'I;16L')  # one channel: the ids themselves
RGB_MODES = ('RGB', 'RGBA')                       # R + 256 G + 256^2 B (alpha ignored)
CLASS_DRAW, JPEG_DRAW = 0, 1  # separate random streams of one draw


@functools.cache
def category_names(numbering: str = 'coco') -> dict[int, str]:
  """Category id -> name (133 entries) under `numbering` (see the module docstring)."""
  table = json.loads(CATEGORIES_FILE.read_text())['categories']
  if numbering == 'contiguous':
    return {i: row['name'] for i, row in enumerate(table)}
  if numbering != 'coco':
    raise ValueError(f'unknown category numbering {numbering!r}; expected one of {NUMBERINGS}.')
  return {row['id']: row['name'] for row in table}


def numbering_of(category_ids, where: str) -> str:
  """The numbering that all of one annotation file's category ids fit; `contiguous` (the
  original indexes its class-name list), with a warning, when they fit both."""
  ids = set(category_ids)
  fits = [n for n in NUMBERINGS if ids <= category_names(n).keys()]
  if not fits:
    raise ValueError(f'{where}: category ids {sorted(ids)[:8]}... fit neither the official '
                     f'COCO panoptic ids nor 0-132 ({CATEGORIES_FILE.name}).')
  if len(fits) == 2:
    logging.warning('%s: every panoptic category id fits both the official COCO ids and '
                    '0-132; reading them as 0-132 (the original indexes its class list)',
                    where)
    return 'contiguous'
  return fits[0]


def segment_ids(rgb: np.ndarray) -> np.ndarray:
  """uint8 `[H, W, 3]` panoptic PNG -> int64 `[H, W]` segment ids (R + 256 G + 256^2 B)."""
  rgb = rgb.astype(np.int64)
  return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def _ids(img: Image.Image) -> np.ndarray:
  if img.mode in ID_MODES:
    return np.asarray(img).astype(np.int64)
  if img.mode not in RGB_MODES:
    raise ValueError(f'mode {img.mode!r}: expected RGB ids (R + 256 G + 256^2 B) or one '
                     f'channel of ids')
  return segment_ids(np.asarray(img.convert('RGB')))


def read_segment_ids(path: str, origin: str) -> np.ndarray:
  """The segment-id map `[H, W]` of a panoptic PNG; errors name `origin` and the file."""
  return read_pixels(path, origin, _ids, 'panoptic mask', 'panoptic PNG')


def parse_segments(seg_info, origin: str) -> tuple[tuple[int, int], ...]:
  """`seg_info` -> `((segment id, category id), ...)`, checked: a non-empty list of
  `{"id": int, "category_id": int}` (the ids' numbering is checked per file)."""
  if not isinstance(seg_info, list) or not seg_info:
    raise ValueError(f'{origin}: "seg_info" must be a non-empty list of {{"id", '
                     f'"category_id"}}, got {seg_info!r:.80}.')
  segments = []
  for k, seg in enumerate(seg_info):
    if not (isinstance(seg, dict) and isinstance(seg.get('id'), int)
            and isinstance(seg.get('category_id'), int)):
      raise ValueError(f'{origin}: seg_info[{k}] must be {{"id": int, "category_id": int}}, '
                       f'got {seg!r:.80}.')
    segments.append((seg['id'], seg['category_id']))
  return tuple(segments)


def draw_generator(origin: str, draw: tuple[int, ...], stream: int) -> np.random.Generator:
  """Random stream `stream` of draw `draw` of the entry at `origin`, keyed by its file name
  and line (not its folder: moving the data keeps the draws)."""
  key = origin.replace('\\', '/').rsplit('/', 1)[-1]
  return np.random.default_rng([zlib.crc32(key.encode()), stream, *draw])


@dataclasses.dataclass(frozen=True)
class PanopticRecord:
  """A panoptic entry (see the module docstring); `conversation[0]` holds `{}`."""
  image: str
  origin: str
  mask_path: str
  segments: tuple[tuple[int, int], ...]
  conversation: tuple[dict, ...]
  numbering: str = 'coco'
  num_masks = 1

  def category(self, draw: tuple[int, ...]) -> int:
    """The category id drawn for `draw`."""
    categories = np.unique([category for _, category in self.segments])
    return int(draw_generator(self.origin, draw, CLASS_DRAW).choice(categories))

  def load(self, draw: tuple[int, ...] = ()) -> RefSample:
    category = self.category(draw)
    name = category_names(self.numbering)[category]
    ids = read_segment_ids(self.mask_path, self.origin)
    mask = np.isin(ids, [segment for segment, c in self.segments if c == category])
    if not mask.any():
      raise ValueError(f'{self.origin}: no pixel of {self.mask_path} holds a segment of '
                       f'category {category} ({name}) listed in seg_info.')
    image = require_image(self.image, self.origin, ids.shape)
    turns = [dict(t) for t in self.conversation]
    turns[0]['value'] = turns[0]['value'].replace(CLASS_SLOT, name)
    return RefSample(image, [], [mask], self.origin, turns)
