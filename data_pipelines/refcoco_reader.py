"""RefCOCO / RefCOCO+ / RefCOCOg / gRefCOCO from their released files.

A dataset folder (lichengunc/refer and gRefCOCO layout) holds:
- `refs(unc).p` (RefCOCO, RefCOCO+), `refs(umd).p` or `refs(google).p` (RefCOCOg): a
  pickled list of refs `{ref_id, ann_id, image_id, split, sentences: [{sent, ...}],
  file_name, category_id, ...}`, one per referred object;
- or `grefs(unc).json` (gRefCOCO; also read as `grefs(unc).p`): the same with `ann_id`
  a list of objects, `[-1]` for a no-target expression, and a `no_target` flag;
- `instances.json`: COCO `images` (`id, file_name, height, width`) and `annotations`
  (`id, segmentation`, polygons or RLE).
Images come from the COCO train2014 folder, `image_root / images[image_id].file_name`
(a ref's own `file_name` carries an `_<ann_id>` suffix and is not a file); by default
`image_root` is the first of `IMAGE_DIRS` found beside the dataset folder (PSALM's and
refer's layouts: `refer_seg/{refcoco,...}` next to `refer_seg/images/...`).

One sample per ref of the chosen split (exact `split` match, as PSALM's conversion):
all its sentences and one mask, the union of its objects (crowd ones included, as in
PSALM's files); all-False for no-target refs. Refs without sentences are skipped and
listed in `reader.skipped`. The pickles are read with a restricted unpickler that only
builds plain lists, dicts, strings and numbers.
"""

import dataclasses
import json
import os
import pickle

from etils import epath

from argenseg_jax import user_input
from data_pipelines.lazy_samples import CocoRecord, RecordSource
from data_pipelines.reader_checks import EmptyDatasetError

SKIP_NO_SENTENCES = 'ref without sentences'
IMAGE_DIRS = ('images/mscoco/images/train2014', 'images/mscoco/train2014',
              'images/train2014', 'train2014')
_REF_KEYS = ('ref_id', 'ann_id', 'image_id', 'split', 'sentences')


class _PlainUnpickler(pickle.Unpickler):
  """Builds only built-in containers and scalars; any class reference is refused."""

  def find_class(self, module, name):
    raise pickle.UnpicklingError(f'refers to {module}.{name}; only plain lists, dicts, '
                                 'strings and numbers are accepted in a refs file')


def load_refs(path: epath.Path) -> list[dict]:
  """A `refs(*).p` pickle or `grefs(*).json` list -> the list of ref dicts, checked."""
  try:
    if path.suffix == '.json':
      refs = json.loads(path.read_text(encoding='utf-8'))
    else:
      with path.open('rb') as f:
        refs = _PlainUnpickler(f).load()
  except (pickle.UnpicklingError, json.JSONDecodeError, EOFError, UnicodeDecodeError) as e:
    raise ValueError(f'{path}: cannot read the refs ({e}).') from None
  if not isinstance(refs, list):
    raise ValueError(f'{path}: expected a list of refs, got {type(refs).__name__}.')
  for i, ref in enumerate(refs):
    missing = [k for k in _REF_KEYS if not isinstance(ref, dict) or k not in ref]
    if missing:
      raise ValueError(f'{path}: ref {i} lacks {missing}.')
  return refs


@dataclasses.dataclass
class RefCocoFiles:
  """The parsed files of one dataset folder (annotations indexed by id)."""
  refs_path: epath.Path
  instances_path: epath.Path
  refs: list[dict]
  images: dict[int, dict]
  annotations: dict[int, dict]

  @property
  def splits(self) -> list[str]:
    return sorted({ref['split'] for ref in self.refs})


def _find_refs_file(dataset_dir: epath.Path, split_by: str | None = None) -> epath.Path:
  """The refs file of a dataset folder; `split_by` (unc, umd, google) defaults to umd
  when `refs(umd).p` is there (RefCOCOg, as PSALM), else unc."""
  if split_by is None:
    split_by = 'umd' if (dataset_dir / 'refs(umd).p').is_file() else 'unc'
  names = [f'refs({split_by}).p', f'grefs({split_by}).json', f'grefs({split_by}).p']
  for name in names:
    if (dataset_dir / name).is_file():
      return dataset_dir / name
  raise FileNotFoundError(f'{dataset_dir}: none of {names} found.')


def load_refcoco(dataset_dir, split_by: str | None = None) -> RefCocoFiles:
  """Reads the refs file and `instances.json` of `dataset_dir`."""
  dataset_dir = user_input.path(dataset_dir)
  refs_path = _find_refs_file(dataset_dir, split_by)
  instances_path = dataset_dir / 'instances.json'
  if not instances_path.is_file():
    raise FileNotFoundError(f'{dataset_dir}: instances.json not found.')
  try:
    instances = json.loads(instances_path.read_text(encoding='utf-8'))
    images = {img['id']: img for img in instances['images']}
    annotations = {ann['id']: ann for ann in instances['annotations']}
  except (json.JSONDecodeError, KeyError, TypeError) as e:
    raise ValueError(f'{instances_path}: not a COCO instances file ({e}).') from None
  return RefCocoFiles(refs_path, instances_path, load_refs(refs_path), images, annotations)


def _find_image_dir(refer_root: epath.Path) -> epath.Path:
  """The first of `IMAGE_DIRS` that exists under `refer_root`."""
  for name in IMAGE_DIRS:
    if (refer_root / name).is_dir():
      return refer_root / name
  raise FileNotFoundError(f'{refer_root}: no COCO train2014 image folder among {IMAGE_DIRS}; '
                          'pass image_root.')


def _target_ann_ids(ref: dict, origin: str) -> list[int]:
  """The annotation ids of a ref's objects; `[]` for a no-target (gRefCOCO) ref."""
  ids = ref['ann_id'] if isinstance(ref['ann_id'], list) else [ref['ann_id']]
  real = [a for a in ids if a != -1]
  if real and len(real) != len(ids):
    raise ValueError(f'{origin}: ann_id {ids} mixes -1 (no target) with objects.')
  if 'no_target' in ref and bool(ref['no_target']) == bool(real):
    raise ValueError(f'{origin}: no_target={ref["no_target"]} and ann_id {ids} disagree.')
  return real


def _record(files: RefCocoFiles, ref: dict, origin: str, image_root: str) -> CocoRecord:
  try:
    image = files.images[ref['image_id']]
  except KeyError:
    raise ValueError(f'{origin}: image {ref["image_id"]} is not in '
                     f'{files.instances_path}.') from None
  segmentations = []
  for ann_id in _target_ann_ids(ref, origin):
    if ann_id not in files.annotations:
      raise ValueError(f'{origin}: annotation {ann_id} is not in {files.instances_path}.')
    segmentations.append(files.annotations[ann_id]['segmentation'])
  return CocoRecord(user_input.join(image_root, image['file_name']),
                    tuple(s['sent'] for s in ref['sentences']), origin,
                    int(image['height']), int(image['width']), tuple(segmentations))


class RefCocoReader(RecordSource):
  """`RefCocoReader(dataset_dir or RefCocoFiles, split)[i]` -> `RefSample`.

  Origins read `'<refs file>:ref_id=<id>'`.
  """

  def __init__(self, root, split: str, *, image_root=None, split_by: str | None = None):
    files = root if isinstance(root, RefCocoFiles) else load_refcoco(root, split_by)
    if image_root is None:
      image_root = _find_image_dir(files.refs_path.parent.parent)
    if split not in files.splits:
      raise EmptyDatasetError(f'{files.refs_path}: no refs in split {split!r}; '
                              f'its splits are {files.splits}.')
    records, skipped = [], []
    for ref in files.refs:
      if ref['split'] != split:
        continue
      origin = f'{files.refs_path}:ref_id={ref["ref_id"]}'
      if ref['sentences']:
        try:
          records.append(_record(files, ref, origin, os.fspath(image_root)))
        except (KeyError, TypeError) as e:
          raise ValueError(f'{origin}: malformed ref or annotation ({type(e).__name__}: '
                           f'{e}).') from None
      else:
        skipped.append((origin, SKIP_NO_SENTENCES))
    super().__init__(records, skipped, files.refs_path, split)
