"""Writing a checkpoint directory so that it is either complete or absent, and never over
files we did not write."""

import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable

from argenseg_jax import user_input


@dataclasses.dataclass(frozen=True)
class DirFormat:
  """The entries a writer puts in its directories; the JSON `marker` among them holds
  `{"format": format}`."""
  format: str
  marker: str
  names: frozenset[str]

  def owns(self, path: pathlib.Path) -> bool:
    """Whether the directory `path` holds our marker and nothing but our entries."""
    if not {p.name for p in path.iterdir()} <= self.names:
      return False
    try:
      return json.loads((path / self.marker).read_text()).get('format') == self.format
    except (OSError, ValueError, AttributeError):
      return False


class TargetError(ValueError):
  """Writing to this directory would replace files we did not write."""


def _foreign(out_dir: pathlib.Path, fmt: DirFormat) -> bool:
  return out_dir.is_dir() and any(out_dir.iterdir()) and not fmt.owns(out_dir)


def check_target(out_dir, fmt: DirFormat, overwrite: bool = False) -> pathlib.Path:
  """`out_dir` made absolute, once it is clear that writing a `fmt` directory there loses
  nothing: it is absent, empty or one of ours. `overwrite` allows any other directory
  (our entries in it are replaced, all other files kept)."""
  out_dir = user_input.folder_path(pathlib.Path(out_dir).absolute(), 'output directory')
  if not overwrite and _foreign(out_dir, fmt):
    theirs = sorted(p.name for p in out_dir.iterdir())
    raise TargetError(
        f'{out_dir} is not empty ({", ".join(theirs[:3])}{", ..." * (len(theirs) > 3)}) and '
        f'not a {fmt.format} directory we wrote: give a new or empty directory, or '
        '--overwrite to replace our files in it (the others are kept).')
  return out_dir


def _swap(tmp: pathlib.Path, out_dir: pathlib.Path) -> None:
  """`tmp` becomes `out_dir` in one rename (an old `out_dir`, all ours, is deleted)."""
  old = None
  if out_dir.exists():
    old = pathlib.Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.old.', dir=out_dir.parent))
    os.replace(out_dir, old / out_dir.name)
  os.replace(tmp, out_dir)
  if old is not None:
    shutil.rmtree(old, ignore_errors=True)


def _merge(tmp: pathlib.Path, out_dir: pathlib.Path, fmt: DirFormat) -> None:
  """The entries of `tmp` moved into `out_dir`, whose entries of `fmt.names` are deleted
  first (a stale one could shadow the new files) and whose other files stay."""
  old = pathlib.Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.old.', dir=out_dir.parent))
  for entry in out_dir.iterdir():
    if entry.name in fmt.names:
      os.replace(entry, old / entry.name)
  for entry in tmp.iterdir():
    os.replace(entry, out_dir / entry.name)
  shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(out_dir, fmt: DirFormat, overwrite: bool = False):
  """Yields a temporary sibling directory; on success it replaces `out_dir` (one rename;
  with `overwrite` and a directory that is not ours, entry by entry, other files kept),
  on error it is removed. Refuses the same targets as `check_target`, before yielding."""
  out_dir = check_target(out_dir, fmt, overwrite)
  out_dir.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.', dir=out_dir.parent))
  try:
    yield tmp
    if _foreign(out_dir, fmt):
      _merge(tmp, out_dir, fmt)
    else:
      _swap(tmp, out_dir)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def write_atomic(path, write: Callable[[pathlib.Path], object]) -> None:
  """`write(tmp)` then renames `tmp` to `path`: readers see the old file or the new one."""
  path = pathlib.Path(path)
  tmp = path.with_name(f'.tmp-{path.name}')
  write(tmp)
  os.replace(tmp, path)
