"""Checks of command-line input that run before any model is loaded: numbers in their
range (argparse types), paths (`path`: local or cloud) and output paths that can be
written."""

import argparse
import os
import pathlib
import re
import secrets

from etils import epath

# `scheme://` at the start of a path: a cloud URL (gs://, s3://, ...), not a local path.
_URL = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*://')


def _number(text: str, kind: type, ok, want: str):
  try:
    value = kind(text)
  except ValueError:
    value = None
  if value is None or not ok(value):
    raise argparse.ArgumentTypeError(f'must be {want}, got {text!r}')
  return value


def positive_int(text: str) -> int:
  """argparse type: an integer >= 1."""
  return _number(text, int, lambda v: v >= 1, 'an integer >= 1')


def non_negative_int(text: str) -> int:
  """argparse type: an integer >= 0."""
  return _number(text, int, lambda v: v >= 0, 'an integer >= 0')


def fraction(text: str) -> float:
  """argparse type: a number in (0, 1]."""
  return _number(text, float, lambda v: 0 < v <= 1, 'a number in (0, 1]')


def is_local(path) -> bool:
  """Whether `path` (text or a path) names a local file rather than a cloud URL."""
  return not _URL.match(os.fspath(path))


def path(text, absolute: bool = False) -> epath.Path:
  """`text` (a str or any path) as an `epath.Path`, the one path type of the project: a
  cloud URL (gs://, s3://, az://, hf://; see README "Cloud paths") kept as it is, a local
  path as given or, with `absolute`, made absolute like `pathlib.Path.absolute`. Other
  URL schemes are refused."""
  text = os.fspath(text)
  if not is_local(text):
    try:
      return epath.Path(text)
    except KeyError:
      raise ValueError(f'{text}: unsupported URL scheme; give a local path or a gs://, '
                       's3://, az:// or hf:// URL.') from None
  local = pathlib.Path(text)
  return epath.Path(local.absolute() if absolute else local)


def join(root, name: str) -> str:
  """`name` in the folder `root`, as text; an absolute path or a cloud URL as it is."""
  return name if not is_local(name) else os.path.join(os.fspath(root), name)


def _ancestors(where: epath.Path) -> list[epath.Path]:
  """`where` and the folders above it: up to `/`, or for a cloud path its bucket."""
  chain = [where, *where.parents]
  if is_local(where):
    return chain
  return [p for p in chain if not is_local(p) and not str(p).endswith('://')]


def _check_writable_in(where: epath.Path, what: str, target) -> None:
  """Raises unless the nearest existing folder at or above `where` (absolute) is a folder
  we may write in (missing folders below it are created when `target` is written). In a
  cloud folder that is found by writing and deleting an empty object."""
  existing = next((p for p in _ancestors(where) if p.exists()), None)
  if existing is None:
    raise ValueError(f'{what} {target}: its bucket {_ancestors(where)[-1]} does not exist.')
  if not existing.is_dir():
    raise ValueError(f'{what} {target}: {existing} is a file, not a folder.')
  if is_local(existing):
    if not os.access(existing, os.W_OK | os.X_OK):
      raise ValueError(f'{what} {target}: no permission to write in {existing}.')
    return
  probe = existing / f'.argenseg-write-check-{secrets.token_hex(4)}'
  try:
    probe.write_bytes(b'')
    probe.unlink()
  except Exception as e:  # each cloud backend raises its own errors
    reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
    raise ValueError(f'{what} {target}: cannot write in {existing} ({reason}).') from None


def png_path(text, what: str) -> epath.Path:
  """`text` as an absolute path, once it is clear that a PNG can be written there; `what`
  names it in errors (e.g. '--out'), which show `text` as given."""
  where = path(text, absolute=True)
  if where.suffix.lower() != '.png':
    raise ValueError(f'{what} {text}: a PNG is written there; give a name ending in .png.')
  if where.is_dir():
    raise ValueError(f'{what} {text} is a folder; give a file name ending in .png.')
  _check_writable_in(where.parent, what, text)
  return where


def folder_path(text, what: str) -> epath.Path:
  """`text` as an absolute path, once it is clear that files can be written in that
  folder (made if needed); errors show `text` as given."""
  where = path(text, absolute=True)
  if where.exists() and not where.is_dir():
    raise ValueError(f'{what} {text} is a file, not a folder.')
  _check_writable_in(where, what, text)
  return where


def text_arg(value, name: str, hint: str, where: str = '') -> str | None:
  """`value` if it is non-empty text, None if it is absent; anything else is refused."""
  if value is None or (isinstance(value, str) and value.strip()):
    return value
  got = 'empty' if isinstance(value, str) else f'{value!r}, not text'
  raise ValueError(f'{where}{name} is {got}: {hint}.')
