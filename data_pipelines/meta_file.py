"""InternVL / ARGenSeg meta files: which annotation files a training run mixes, and how much.

  {"refcoco": {"root": "data/coco/", "annotation": "anns/refcoco.jsonl",
               "data_augment": false, "repeat_time": 2, "length": 120624},
   "sharegpt4v": {"root": "playground/data/", "annotation": "sharegpt4v.jsonl",
                  "data_augment": false, "repeat_time": 0.5, "length": 102025}}

Keys of a source (any other key is refused, naming it):
  root           folder the entries' images are joined to ('' for none)
  annotation     the `.jsonl` file of entries (`psalm_reader` formats)
  repeat_time    > 1: the entries repeated that many times (an integer, as the original
                 asserts); < 1: only the first `int(n * repeat_time)` entries; 1: once
  data_augment   (default false) JPEG re-encoding at a random quality in [75, 100] before
                 the resize, the original's training augmentation
  length         (optional) the entry count the file was made with; the file is what counts
                 (a different count is logged)
  max_dynamic_patch  (optional) tiles of dynamic resolution; the ARGenSeg recipe has dynamic
                 tiling off, so it is read and ignored, as there
  weight         (ours, optional) a relative sampling weight replacing the original's
                 proportions (length x repeat_time); given for one source, needed for all
Relative paths (`root`, `annotation`, masks in the entries) are taken from `base_dir`
(the original's working directory; `config.data.meta_root`, default the current one).
"""

import dataclasses
import json
import math
import numbers
import os

from argenseg_jax import user_input

REQUIRED = ('root', 'annotation', 'repeat_time')
OPTIONAL = ('data_augment', 'length', 'max_dynamic_patch', 'weight')


@dataclasses.dataclass(frozen=True)
class MetaSource:
  """One source of a meta file, its paths resolved against `base_dir` (where masks are
  found)."""
  name: str
  root: str
  annotation: str
  base_dir: str
  repeat_time: float
  data_augment: bool = False
  length: int | None = None
  weight: float | None = None


def _number(value, where: str, integer: bool = False) -> float:
  ok = isinstance(value, numbers.Integral if integer else numbers.Real)
  if not ok or isinstance(value, bool) or not 0 < value < math.inf:
    kind = 'integer' if integer else 'number'
    raise ValueError(f'{where} must be a finite positive {kind}, got {value!r}.')
  return value


def _source(name: str, entry, where: str, base_dir: str) -> MetaSource:
  if not isinstance(entry, dict):
    raise ValueError(f'{where}: expected an object with keys {list(REQUIRED)}, got '
                     f'{type(entry).__name__}.')
  unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
  if unknown:
    raise ValueError(f'{where}: unknown keys {unknown}; the keys are '
                     f'{list(REQUIRED + OPTIONAL)}.')
  missing = [k for k in REQUIRED if k not in entry]
  if missing:
    raise ValueError(f'{where}: missing keys {missing}.')
  for key in ('root', 'annotation'):
    if not isinstance(entry[key], str):
      raise ValueError(f'{where}: "{key}" must be a path string, got {entry[key]!r}.')
  if not entry['annotation'].endswith('.jsonl'):
    raise ValueError(f'{where}: "annotation" must be a .jsonl file (as the original '
                     f'requires), got {entry["annotation"]!r}.')
  repeat = _number(entry['repeat_time'], f'{where}: "repeat_time"')
  if repeat > 1 and repeat != int(repeat):
    raise ValueError(f'{where}: "repeat_time" above 1 must be an integer, got {repeat}.')
  augment = entry.get('data_augment', False)
  if not isinstance(augment, bool):
    raise ValueError(f'{where}: "data_augment" must be true or false, got {augment!r}.')
  length = entry.get('length')
  if length is not None:
    length = int(_number(length, f'{where}: "length"', integer=True))
  if 'max_dynamic_patch' in entry:
    _number(entry['max_dynamic_patch'], f'{where}: "max_dynamic_patch"', integer=True)
  weight = entry.get('weight')
  if weight is not None:
    weight = float(_number(weight, f'{where}: "weight"'))
  return MetaSource(name, user_input.join(base_dir, entry['root']),
                    user_input.join(base_dir, entry['annotation']), base_dir,
                    int(repeat) if repeat >= 1 else float(repeat), augment, length, weight)


def read_meta(path, base_dir: str = '') -> list[MetaSource]:
  """The sources of meta file `path` in file order; errors name the file and the source."""
  path = user_input.path(path)
  if not path.is_file():
    raise FileNotFoundError(f'meta file not found: {path}')
  try:
    table = json.loads(path.read_text(encoding='utf-8'))
  except json.JSONDecodeError as e:
    raise ValueError(f'{path}:{e.lineno}: invalid JSON ({e.msg}, column {e.colno}).') from None
  if not isinstance(table, dict) or not table:
    raise ValueError(f'{path}: expected a JSON object mapping source names to '
                     f'{{"root", "annotation", "repeat_time", ...}}.')
  base_dir = str(base_dir) or os.getcwd()
  sources = [_source(name, entry, f'{path}: source {name!r}', base_dir)
             for name, entry in table.items()]
  weighted = [s.name for s in sources if s.weight is not None]
  if weighted and len(weighted) != len(sources):
    raise ValueError(f'{path}: "weight" is given for {weighted} only; give it for every '
                     f'source or for none.')
  return sources
