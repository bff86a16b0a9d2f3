"""Writing a checkpoint directory so that it is either complete or absent, and never over
files we did not write; local or cloud (`user_input.path`).

On a local disk the new directory replaces the old one in one rename. Object stores
(gs://, s3://) have no directories: there a rename moves object by object, so a reader
may briefly see part of the new directory; the marker file of the format (which
readers check first) is moved last.
"""

import contextlib
import dataclasses
import json
import pathlib
import secrets
import tempfile
from collections.abc import Callable

from etils import epath

from argenseg_jax import user_input


@dataclasses.dataclass(frozen=True)
class DirFormat:
  """The entries a writer puts in its directories; the JSON `marker` among them holds
  `{"format": format}`."""
  format: str
  marker: str
  names: frozenset[str]

  def owns(self, path: epath.Path) -> bool:
    """Whether the directory `path` holds our marker and nothing but our entries."""
    if not {p.name for p in path.iterdir()} <= self.names:
      return False
    try:
      return json.loads((path / self.marker).read_text()).get('format') == self.format
    except (OSError, ValueError, AttributeError):
      return False


class TargetError(ValueError):
  """Writing to this directory would replace files we did not write."""


def _foreign(out_dir: epath.Path, fmt: DirFormat) -> bool:
  return out_dir.is_dir() and any(out_dir.iterdir()) and not fmt.owns(out_dir)


def check_target(out_dir, fmt: DirFormat, overwrite: bool = False) -> epath.Path:
  """`out_dir` made absolute, once it is clear that writing a `fmt` directory there loses
  nothing: it is absent, empty or one of ours. `overwrite` allows any other directory
  (our entries in it are replaced, all other files kept)."""
  out_dir = user_input.folder_path(user_input.path(out_dir, absolute=True),
                                   'output directory')
  if not overwrite and _foreign(out_dir, fmt):
    theirs = sorted(p.name for p in out_dir.iterdir())
    raise TargetError(
        f'{out_dir} is not empty ({", ".join(theirs[:3])}{", ..." * (len(theirs) > 3)}) and '
        f'not a {fmt.format} directory we wrote: give a new or empty directory, or '
        '--overwrite to replace our files in it (the others are kept).')
  return out_dir


def _sibling(path: epath.Path, kind: str) -> epath.Path:
  """A new name beside `path` (`.NAME.KIND.RANDOM`) for a temporary directory."""
  return path.parent / f'.{path.name}.{kind}.{secrets.token_hex(6)}'


def _remove(path: epath.Path) -> None:
  """Deletes the file or directory `path` if it is there (what is left on an error stays)."""
  try:
    path.rmtree(missing_ok=True)
  except OSError:
    pass


def _swap(tmp: epath.Path, out_dir: epath.Path, marker: str) -> None:
  """`tmp` becomes `out_dir` in one rename (an old `out_dir`, all ours, is deleted). In an
  object store, where a rename moves object by object, the marker goes in last."""
  old = held = None
  if out_dir.exists():
    old = out_dir.rename(_sibling(out_dir, 'old'))
  if not user_input.is_local(out_dir) and (tmp / marker).exists():
    held = (tmp / marker).rename(_sibling(out_dir, 'marker'))
  tmp.rename(out_dir)
  if held is not None:
    held.rename(out_dir / marker)
  if old is not None:
    _remove(old)


def _merge(tmp: epath.Path, out_dir: epath.Path, fmt: DirFormat) -> None:
  """The entries of `tmp` moved into `out_dir` (the marker last), whose entries of
  `fmt.names` are first moved aside (a stale one could shadow the new files; the marker
  first) and then deleted, and whose other files stay."""
  ours = sorted((p for p in out_dir.iterdir() if p.name in fmt.names),
                key=lambda p: p.name != fmt.marker)
  aside = [entry.rename(_sibling(entry, 'old')) for entry in ours]
  for entry in sorted(tmp.iterdir(), key=lambda p: p.name == fmt.marker):
    entry.rename(out_dir / entry.name)
  for entry in aside:
    _remove(entry)


@contextlib.contextmanager
def atomic_directory(out_dir, fmt: DirFormat, overwrite: bool = False):
  """Yields a temporary sibling directory; on success it replaces `out_dir` (one rename;
  with `overwrite` and a directory that is not ours, entry by entry, other files kept),
  on error it is removed. Refuses the same targets as `check_target`, before yielding."""
  out_dir = check_target(out_dir, fmt, overwrite)
  out_dir.parent.mkdir(parents=True, exist_ok=True)
  tmp = _sibling(out_dir, 'tmp')
  tmp.mkdir()
  try:
    yield tmp
    if _foreign(out_dir, fmt):
      _merge(tmp, out_dir, fmt)
    else:
      _swap(tmp, out_dir, fmt.marker)
  finally:
    _remove(tmp)


def write_atomic(path, write: Callable[[epath.Path], object]) -> None:
  """`write(tmp)` then renames `tmp` to `path`: readers see the old file or the new one."""
  path = user_input.path(path)
  tmp = path.with_name(f'.tmp-{path.name}')
  write(tmp)
  tmp.replace(path)


def _upload(local: pathlib.Path, target: epath.Path) -> None:
  """Copies the file or directory tree `local` to `target`."""
  if local.is_dir():
    target.mkdir(parents=True, exist_ok=True)
    for entry in local.iterdir():
      _upload(entry, target / entry.name)
  else:
    epath.Path(local).copy(target)


def write_local(path, write: Callable[[pathlib.Path], object]) -> None:
  """`write(file)` for writers that only take local file names (safetensors, the
  streaming converter): into a local `path` directly, for a cloud one into a local
  temporary folder whose result (file or directory) is then copied there."""
  path = user_input.path(path)
  if user_input.is_local(path):
    write(pathlib.Path(path))
    return
  with tempfile.TemporaryDirectory() as staging:
    local = pathlib.Path(staging) / path.name
    write(local)
    _upload(local, path)
