"""Writing a checkpoint directory so that it is either complete or absent."""

import contextlib
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable


@contextlib.contextmanager
def atomic_directory(out_dir):
  """Yields a temporary sibling directory; on success it replaces `out_dir` (an old
  `out_dir` is swapped out first and then deleted), on error it is removed."""
  out_dir = pathlib.Path(out_dir)
  out_dir.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.', dir=out_dir.parent))
  try:
    yield tmp
    old = None
    if out_dir.exists():
      old = out_dir.with_name(f'.{out_dir.name}.old')
      shutil.rmtree(old, ignore_errors=True)
      os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old is not None:
      shutil.rmtree(old, ignore_errors=True)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def write_atomic(path, write: Callable[[pathlib.Path], object]) -> None:
  """`write(tmp)` then renames `tmp` to `path`: readers see the old file or the new one."""
  path = pathlib.Path(path)
  tmp = path.with_name(f'.tmp-{path.name}')
  write(tmp)
  os.replace(tmp, path)
