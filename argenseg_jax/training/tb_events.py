"""TensorBoard event files without TensorFlow: scalar summaries, written by hand.

A file is a sequence of records `len (u64) | crc(len) | data | crc(data)` with masked
CRC-32C; each record is a serialised `Event` protobuf (wall_time = 1, step = 2,
file_version = 3, summary = 5; `Summary.Value`: tag = 1, simple_value = 2).
"""

import pathlib
import socket
import struct
import time


def _crc32c_table() -> list[int]:
  table = []
  for n in range(256):
    c = n
    for _ in range(8):
      c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    table.append(c)
  return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  c = 0xFFFFFFFF
  for byte in data:
    c = _TABLE[(c ^ byte) & 0xFF] ^ (c >> 8)
  return c ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
  c = crc32c(data)
  return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
  out = bytearray()
  while True:
    byte, n = n & 0x7F, n >> 7
    out.append(byte | (0x80 if n else 0))
    if not n:
      return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
  """A length-delimited protobuf field."""
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def event(step: int, wall_time: float, scalars: dict[str, float] | None = None,
          file_version: str | None = None) -> bytes:
  """A serialised `Event` with scalar summary values (or the file-version header)."""
  out = _varint(1 << 3 | 1) + struct.pack('<d', wall_time) + _varint(2 << 3) + _varint(step)
  if file_version is not None:
    out += _field(3, file_version.encode())
  if scalars:
    values = b''.join(
        _field(1, _field(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack('<f', value))
        for tag, value in scalars.items())
    out += _field(5, values)
  return out


def record(data: bytes) -> bytes:
  length = struct.pack('<Q', len(data))
  return (length + struct.pack('<I', _masked_crc(length)) + data
          + struct.pack('<I', _masked_crc(data)))


class EventFileWriter:
  """Appends scalar events to `logdir/events.out.tfevents.<time>.<host>`."""

  def __init__(self, logdir):
    logdir = pathlib.Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    self.path = logdir / f'events.out.tfevents.{int(time.time())}.{socket.gethostname()}'
    self._file = open(self.path, 'ab')  # pylint: disable=consider-using-with
    self._file.write(record(event(0, time.time(), file_version='brain.Event:2')))

  def scalars(self, step: int, values: dict[str, float]) -> None:
    self._file.write(record(event(step, time.time(), values)))
    self._file.flush()

  def close(self) -> None:
    self._file.close()
