"""PSALM-style annotation files, the format ARGenSeg trains and evaluates on.

A `.json` list (PSALM's converted RefCOCO / gRefCOCO files, e.g. `refcoco/val_psalm.json`)
or a `.jsonl` file (ARGenSeg's `example/anns/*.jsonl`), holding two kinds of entries:

1. Referring entries, one per referred object:
     {"image_info": {"file_name": "COCO_train2014_...jpg", "height": H, "width": W, ...},
      "instruction": [{"sent": "man in red", ...}, ...],
      "anns": [{"segmentation": polygons | RLE, ...}, ...], ...}
   -> one sample with every sentence and one mask, the union of `anns` (all-False when
   `anns` is empty: a gRefCOCO no-target expression). The image is
   `image_root / image_info.file_name`.
2. Conversation entries:
     {"image": "rel/img.jpg", "mask": "rel/m.png" | ["m1.png", ...] (optional),
      "conversations": [{"from": "human", "value": "<image>\\n ..."},
                        {"from": "gpt", "value": "Sure, ... <mask>."}], "dataset": ...}
   -> one sample with `conversation` set, masks in the order of the gpt turns' `<mask>`
   placeholders (mask files read by `mask_files.read_mask`). As in the original, a
   first turn without `<image>` gets `<image>\\n` prepended. Image and mask paths are
   joined to `image_root` (the original opens masks from the working directory: the
   same for its examples, whose root is '').

Skipped, with the reason in `reader.skipped` (never silently): referring entries with
an empty `instruction` list (the original evaluation drops them), panoptic entries
(a single `mask` with `seg_info`-style `dataset` not containing 'refcoco': ARGenSeg
picks a random COCO class for those, from a class-name table it does not ship), and
entries with no image or several images (no single-image segmentation sample).
"""

import os

from argenseg_jax import user_input
from argenseg_jax.chat_template import IMAGE
from data_pipelines.conversations import check_conversation
from data_pipelines.json_records import read_records
from data_pipelines.lazy_samples import CocoRecord, MaskFileRecord, RecordSource

SKIP_NO_INSTRUCTION = 'empty instruction list'
SKIP_PANOPTIC = 'panoptic entry (random COCO class; class-name table not available)'
SKIP_NOT_SINGLE_IMAGE = 'no image or several images'


def _referring_record(entry: dict, origin: str, image_root: str) -> CocoRecord:
  info = entry['image_info']
  sentences = tuple(s['sent'] for s in entry['instruction'])
  segmentations = tuple(ann['segmentation'] for ann in entry['anns'])
  return CocoRecord(user_input.join(image_root, info['file_name']), sentences, origin,
                    int(info['height']), int(info['width']), segmentations)


def _conversation_record(entry: dict, origin: str, image_root: str) -> MaskFileRecord:
  masks = entry.get('mask', [])
  masks = [masks] if isinstance(masks, str) else list(masks)
  turns = [dict(t) for t in entry['conversations']]
  if turns and isinstance(turns[0].get('value'), str) and IMAGE not in turns[0]['value']:
    turns[0]['value'] = f'{IMAGE}\n' + turns[0]['value']
  turns = check_conversation(turns, len(masks), origin)
  return MaskFileRecord(user_input.join(image_root, entry['image']), (), origin,
                        tuple(user_input.join(image_root, m) for m in masks), tuple(turns))


def _skip_reason(entry: dict) -> str | None:
  if 'image_info' in entry:
    return None if entry['instruction'] else SKIP_NO_INSTRUCTION
  if 'conversations' not in entry:
    return None  # malformed: `_record` says so
  if not isinstance(entry.get('image'), str):
    return SKIP_NOT_SINGLE_IMAGE
  dataset = entry.get('dataset')
  if isinstance(entry.get('mask'), str) and dataset is not None and 'refcoco' not in dataset:
    return SKIP_PANOPTIC
  return None


def _record(entry: dict, origin: str, image_root: str):
  if 'image_info' in entry:
    return _referring_record(entry, origin, image_root)
  if 'conversations' in entry:
    return _conversation_record(entry, origin, image_root)
  raise ValueError(f'{origin}: neither a referring entry (image_info, instruction, anns) '
                   f'nor a conversation entry (image, conversations); keys: {sorted(entry)}.')


class PsalmReader(RecordSource):
  """`PsalmReader(path, image_root)[i]` -> `RefSample` (see the module docstring)."""

  def __init__(self, path, image_root):
    records, skipped = [], []
    for origin, entry in read_records(path):
      try:
        reason = _skip_reason(entry)
        if reason is None:
          records.append(_record(entry, origin, os.fspath(image_root)))
      except (KeyError, TypeError) as e:
        raise ValueError(f'{origin}: malformed entry ({type(e).__name__}: {e}).') from None
      if reason is not None:
        skipped.append((origin, reason))
    super().__init__(records, skipped, path)
