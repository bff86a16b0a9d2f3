"""Annotation files as `(origin, entry)` pairs, with errors that name the file and line.

- `.jsonl`: one JSON object per line (blank lines skipped); origin `'file:line'`.
- anything else (`.json`): one JSON list of objects; origin `'file[index]'`.
"""

import json

from etils import epath

from argenseg_jax import user_input


def _parse(text: str, where: str):
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f'{where}: invalid JSON ({e.msg}, column {e.colno}).') from None


def _require_object(entry, origin: str) -> dict:
  if not isinstance(entry, dict):
    raise ValueError(f'{origin}: expected a JSON object, got {type(entry).__name__}.')
  return entry


def read_jsonl(path: epath.Path) -> list[tuple[str, dict]]:
  """`[('file:line', entry)]` of a JSON-lines file."""
  records = []
  with path.open('r', encoding='utf-8') as f:
    for number, line in enumerate(f, start=1):
      if line.strip():
        origin = f'{path}:{number}'
        records.append((origin, _require_object(_parse(line, origin), origin)))
  return records


def read_json_list(path: epath.Path) -> list[tuple[str, dict]]:
  """`[('file[index]', entry)]` of a file holding one JSON list of objects."""
  text = path.read_text(encoding='utf-8')
  try:
    entries = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f'{path}:{e.lineno}: invalid JSON ({e.msg}, column {e.colno}).') from None
  if not isinstance(entries, list):
    raise ValueError(f'{path}: expected a JSON list of entries, got {type(entries).__name__}.')
  return [(f'{path}[{i}]', _require_object(e, f'{path}[{i}]')) for i, e in enumerate(entries)]


def read_records(path) -> list[tuple[str, dict]]:
  """`.jsonl` -> `read_jsonl`, anything else -> `read_json_list`."""
  path = user_input.path(path)
  if not path.is_file():
    raise FileNotFoundError(f'annotation file not found: {path}')
  return read_jsonl(path) if path.suffix == '.jsonl' else read_json_list(path)
