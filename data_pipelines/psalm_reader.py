"""PSALM / InternVL-style annotation files, the format ARGenSeg trains and evaluates on.

A `.json` list (PSALM's converted RefCOCO / gRefCOCO files, e.g. `refcoco/val_psalm.json`)
or a `.jsonl` file (ARGenSeg's `example/anns/*.jsonl`, InternVL's understanding data),
holding these kinds of entries:

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
   placeholders (mask files read by `mask_files.read_mask`): referring, gRefCOCO,
   ADE20K semantic classes (`refcoco_ade20k`), LISA instance lists. Without `mask` it is
   an understanding conversation (text loss only). As in the original, a first turn
   without `<image>` gets `<image>\\n` prepended.
3. Panoptic entries: a single `mask` with a `dataset` not containing 'refcoco' (the
   original's rule), `seg_info` and `{}` in the first turn -> `panoptic.PanopticRecord`
   (one COCO class drawn per sample; the file's category numbering from its ids).
4. Text-only conversations (no `image`): no image, no mask.
With `training=False` (evaluation) only entries with masks are kept.
Images are joined to `image_root`, masks to `mask_root` (default `image_root`; the
original opens masks from its working directory).

Skipped, with the reason in `reader.skipped` (never silently): referring entries with
an empty `instruction` list (the original evaluation drops them), entries with several
images or a video (one 448 tile per sample here), text-to-image entries (a mask without
an image), and for evaluation understanding and text-only conversations.
"""

import dataclasses
import os

from argenseg_jax import user_input
from argenseg_jax.chat_template import IMAGE
from data_pipelines import panoptic
from data_pipelines.conversations import check_conversation
from data_pipelines.json_records import read_records
from data_pipelines.lazy_samples import CocoRecord, MaskFileRecord, RecordSource, TextRecord

SKIP_NO_INSTRUCTION = 'empty instruction list'
SKIP_NOT_SINGLE_IMAGE = 'several images or a video'
SKIP_TEXT_TO_IMAGE = 'text-to-image entry (a mask without an image)'
SKIP_NO_MASK = 'no mask: understanding or text-only data (training only)'


def _referring_record(entry: dict, origin: str, image_root: str, mask_root: str) -> CocoRecord:
  del mask_root
  info = entry['image_info']
  sentences = tuple(s['sent'] for s in entry['instruction'])
  segmentations = tuple(ann['segmentation'] for ann in entry['anns'])
  return CocoRecord(user_input.join(image_root, info['file_name']), sentences, origin,
                    int(info['height']), int(info['width']), segmentations)


def _with_image_marker(entry: dict) -> list[dict]:
  turns = [dict(t) for t in entry['conversations']]
  if turns and isinstance(turns[0].get('value'), str) and IMAGE not in turns[0]['value']:
    turns[0]['value'] = f'{IMAGE}\n' + turns[0]['value']
  return turns


def is_panoptic(entry: dict) -> bool:
  """The original's rule: one mask file and a `dataset` tag without 'refcoco'."""
  dataset = entry.get('dataset')
  return (isinstance(entry.get('mask'), str) and isinstance(dataset, str)
          and 'refcoco' not in dataset)


def _panoptic_record(entry: dict, origin: str, image_root: str,
                     mask_root: str) -> panoptic.PanopticRecord:
  segments = panoptic.parse_segments(entry.get('seg_info'), origin)
  turns = check_conversation(_with_image_marker(entry), 1, origin)
  if panoptic.CLASS_SLOT not in turns[0]['value']:
    raise ValueError(f'{origin}: a panoptic entry\'s first turn must hold "{{}}" for the '
                     f'class name, got {turns[0]["value"]!r:.80}.')
  return panoptic.PanopticRecord(user_input.join(image_root, entry['image']), origin,
                                 user_input.join(mask_root, entry['mask']), segments,
                                 tuple(turns))


def _conversation_record(entry: dict, origin: str, image_root: str,
                         mask_root: str) -> MaskFileRecord:
  masks = entry.get('mask', [])
  masks = [masks] if isinstance(masks, str) else list(masks)
  turns = check_conversation(_with_image_marker(entry), len(masks), origin)
  return MaskFileRecord(user_input.join(image_root, entry['image']), (), origin,
                        tuple(user_input.join(mask_root, m) for m in masks), tuple(turns))


def _text_record(entry: dict, origin: str, image_root: str, mask_root: str) -> TextRecord:
  del image_root, mask_root
  return TextRecord(origin, tuple(check_conversation(entry['conversations'], 0, origin,
                                                     num_images=0)))


def _kind(entry: dict, training: bool):
  """(record builder, None) or (None, skip reason) for one entry."""
  if 'image_info' in entry:
    return (_referring_record, None) if entry['instruction'] else (None, SKIP_NO_INSTRUCTION)
  if 'conversations' not in entry:
    raise ValueError(f'neither a referring entry (image_info, instruction, anns) nor a '
                     f'conversation entry (image, conversations); keys: {sorted(entry)}.')
  image = entry.get('image')
  if isinstance(image, list) or entry.get('video'):
    return None, SKIP_NOT_SINGLE_IMAGE
  if not image:
    if 'mask' in entry:
      return None, SKIP_TEXT_TO_IMAGE
    return (_text_record, None) if training else (None, SKIP_NO_MASK)
  if not isinstance(image, str):
    raise ValueError(f'"image" must be a file path, got {image!r:.80}.')
  if not (training or entry.get('mask')):
    return None, SKIP_NO_MASK
  return (_panoptic_record if is_panoptic(entry) else _conversation_record), None


class PsalmReader(RecordSource):
  """`PsalmReader(path, image_root)[i]` -> `RefSample` (see the module docstring)."""

  def __init__(self, path, image_root, mask_root=None, training: bool = True):
    image_root = os.fspath(image_root)
    mask_root = image_root if mask_root is None else os.fspath(mask_root)
    records, skipped = [], []
    for origin, entry in read_records(path):
      try:
        build, reason = _kind(entry, training)
        if build is not None:
          records.append(build(entry, origin, image_root, mask_root))
      except (KeyError, TypeError) as e:
        raise ValueError(f'{origin}: malformed entry ({type(e).__name__}: {e}).') from None
      except ValueError as e:
        message = str(e)
        raise ValueError(message if message.startswith(origin) else
                         f'{origin}: {message}') from None
      if reason is not None:
        skipped.append((origin, reason))
    super().__init__(_numbered(records, path), skipped, path)


def _numbered(records: list, path) -> list:
  """The panoptic records with the numbering of their file's category ids."""
  panoptic_ids = {c for r in records if isinstance(r, panoptic.PanopticRecord)
                  for _, c in r.segments}
  if not panoptic_ids:
    return records
  numbering = panoptic.numbering_of(panoptic_ids, str(path))
  return [dataclasses.replace(r, numbering=numbering)
          if isinstance(r, panoptic.PanopticRecord) else r for r in records]
