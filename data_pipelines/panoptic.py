"""COCO-panoptic entries: one class per sample, its pixels the mask (ARGenSeg's `coco_seg`).

An entry (InternVL jsonl, as PSALM converts COCO panoptic):
  {"image": "img.jpg", "mask": "pan.png", "dataset": "coco_seg",
   "seg_info": [{"id": 3226956, "category_id": 45}, ...],
   "conversations": [{"from": "human", "value": "<image>\\n Please segment {} in this image."},
                     {"from": "gpt", "value": "Sure, the segmentation result: <mask>."}]}

The panoptic PNG stores each pixel's segment id as R + 256 G + 256^2 B (COCO's `rgb2id`).
A sample draws one category among those of `seg_info` (uniformly over the distinct
categories, as the original), with a generator seeded by the entry's origin and the
draw number (reproducible, different for each repeat of the entry); the mask is every
pixel of every segment of that category, and the first human turn's `{}` becomes the
category's name from `coco_panoptic_categories.json` (the 133 public COCO panoptic
categories, cocodataset/panopticapi). The original compares the PNG's channels one by
one with the ids, which only agrees with this for ids below 256.
"""

import dataclasses
import functools
import json
import pathlib
import zlib

import numpy as np
from PIL import Image

from argenseg_jax import user_input
from argenseg_jax.ref_sample import RefSample
from data_pipelines.reader_checks import require_image

CLASS_SLOT = '{}'
CATEGORIES_FILE = pathlib.Path(__file__).with_name('coco_panoptic_categories.json')


@functools.cache
def category_names() -> dict[int, str]:
  """COCO panoptic category id -> name (133 entries)."""
  table = json.loads(CATEGORIES_FILE.read_text())['categories']
  return {row['id']: row['name'] for row in table}


def segment_ids(rgb: np.ndarray) -> np.ndarray:
  """uint8 `[H, W, 3]` panoptic PNG -> int64 `[H, W]` segment ids (R + 256 G + 256^2 B)."""
  rgb = rgb.astype(np.int64)
  return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def read_segment_ids(path: str, origin: str) -> np.ndarray:
  """The segment-id map `[H, W]` of a panoptic PNG; errors name `origin` and the file."""
  p = user_input.path(path)
  if not p.is_file():
    raise FileNotFoundError(f'{origin}: panoptic mask not found: {p}')
  try:
    with p.open('rb') as f, Image.open(f) as img:
      rgb = np.asarray(img.convert('RGB'))
  except (OSError, SyntaxError, ValueError) as e:
    raise ValueError(f'{origin}: {p} is not a readable panoptic PNG: {e}') from None
  return segment_ids(rgb)


def parse_segments(seg_info, origin: str) -> tuple[tuple[int, int], ...]:
  """`seg_info` -> `((segment id, category id), ...)`, checked: a non-empty list of
  `{"id", "category_id"}` with categories in the COCO panoptic table."""
  if not isinstance(seg_info, list) or not seg_info:
    raise ValueError(f'{origin}: "seg_info" must be a non-empty list of {{"id", '
                     f'"category_id"}}, got {seg_info!r:.80}.')
  names = category_names()
  segments = []
  for k, seg in enumerate(seg_info):
    if not (isinstance(seg, dict) and isinstance(seg.get('id'), int)
            and isinstance(seg.get('category_id'), int)):
      raise ValueError(f'{origin}: seg_info[{k}] must be {{"id": int, "category_id": int}}, '
                       f'got {seg!r:.80}.')
    if seg['category_id'] not in names:
      raise ValueError(f'{origin}: seg_info[{k}] has category_id {seg["category_id"]}, not '
                       f'a COCO panoptic category ({CATEGORIES_FILE.name}).')
    segments.append((seg['id'], seg['category_id']))
  return tuple(segments)


def draw_generator(origin: str, draw: int) -> np.random.Generator:
  """The generator of draw `draw` of the entry at `origin` (same inputs, same numbers)."""
  return np.random.default_rng([zlib.crc32(origin.encode()), draw])


@dataclasses.dataclass(frozen=True)
class PanopticRecord:
  """A panoptic entry (see the module docstring); `conversation[0]` holds `{}`."""
  image: str
  origin: str
  mask_path: str
  segments: tuple[tuple[int, int], ...]
  conversation: tuple[dict, ...]
  num_masks = 1

  def category(self, draw: int) -> int:
    """The category id drawn for draw `draw`."""
    categories = np.unique([category for _, category in self.segments])
    return int(draw_generator(self.origin, draw).choice(categories))

  def load(self, draw: int = 0) -> RefSample:
    category = self.category(draw)
    ids = read_segment_ids(self.mask_path, self.origin)
    chosen = [segment for segment, c in self.segments if c == category]
    mask = np.isin(ids, chosen)
    image = require_image(self.image, self.origin, ids.shape)
    turns = [dict(t) for t in self.conversation]
    turns[0]['value'] = turns[0]['value'].replace(CLASS_SLOT, category_names()[category])
    return RefSample(image, [], [mask], self.origin, turns)
