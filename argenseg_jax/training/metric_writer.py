"""Training metrics to `workdir/metrics.jsonl` and TensorBoard event files
(`workdir/tensorboard/`, written by tensorboardX), by process 0 only.

In a cloud workdir (gs://, s3://, ...; `user_input.path`), whose objects cannot be
appended to, both files are kept in memory and rewritten whole through `epath` (the
workdir's own backend, not tensorboardX's) at most every `REWRITE_S` seconds and at
`close()`: a run killed without closing loses at most that much of its metrics (its
checkpoints are unaffected).
"""

import json
import threading
import time

import jax
import tensorboardX
from etils import epath
from tensorboardX import record_writer

from argenseg_jax import user_input

REWRITE_S = 60.0


class _RewrittenFile:
  """A binary file in a cloud folder: what is written is kept (after the file's old
  content); `flush()` rewrites the file unless it did less than `REWRITE_S` ago,
  `close()` always."""

  def __init__(self, path: epath.Path):
    self.path = path
    self.data = bytearray(path.read_bytes() if path.exists() else b'')
    self.written = -float('inf')
    self.lock = threading.Lock()  # tensorboardX also flushes from its own thread

  def write(self, data: bytes) -> None:
    with self.lock:
      self.data += data

  def flush(self, force: bool = False) -> None:
    with self.lock:
      if force or time.monotonic() - self.written >= REWRITE_S:
        self.path.write_bytes(bytes(self.data))
        self.written = time.monotonic()

  def close(self) -> None:
    self.flush(force=True)


class _EpathWriterFactory:
  """tensorboardX's hook for the event files of a URL scheme: `_RewrittenFile`s."""

  def open(self, path: str) -> _RewrittenFile:
    return _RewrittenFile(epath.Path(path))

  def directory_check(self, path: str) -> None:
    epath.Path(path).mkdir(parents=True, exist_ok=True)


class MetricWriter:
  def __init__(self, workdir):
    self.enabled = jax.process_index() == 0
    if self.enabled:
      workdir = user_input.path(workdir)
      if user_input.is_local(workdir):
        self._jsonl = open(workdir / 'metrics.jsonl', 'ab')  # pylint: disable=consider-using-with
      else:
        self._jsonl = _RewrittenFile(workdir / 'metrics.jsonl')
        record_writer.register_writer_factory(str(workdir).split(':')[0], _EpathWriterFactory())
      self._events = tensorboardX.SummaryWriter(str(workdir / 'tensorboard'))

  def write(self, step: int, values: dict[str, float]) -> None:
    if self.enabled:
      self._jsonl.write((json.dumps({'step': step, **values}) + '\n').encode())
      self._jsonl.flush()
      for tag, value in values.items():
        self._events.add_scalar(tag, value, step)
      self._events.flush()

  def close(self) -> None:
    if self.enabled:
      self._jsonl.close()
      self._events.close()
