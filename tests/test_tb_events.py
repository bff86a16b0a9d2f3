"""TensorBoard event records written without TensorFlow."""

import struct

from argenseg_jax.training import tb_events


def test_crc32c_known_values():
  assert tb_events.crc32c(b'') == 0
  assert tb_events.crc32c(b'123456789') == 0xE3069283  # the standard check value


def _read_records(path):
  data = path.read_bytes()
  out, i = [], 0
  while i < len(data):
    (n,) = struct.unpack('<Q', data[i:i + 8])
    assert struct.unpack('<I', data[i + 8:i + 12])[0] == tb_events._masked_crc(data[i:i + 8])  # pylint: disable=protected-access
    body = data[i + 12:i + 12 + n]
    assert struct.unpack('<I', data[i + 12 + n:i + 16 + n])[0] == tb_events._masked_crc(body)  # pylint: disable=protected-access
    out.append(body)
    i += 16 + n
  return out


def test_event_file_holds_version_and_scalars(tmp_path):
  writer = tb_events.EventFileWriter(tmp_path)
  writer.scalars(7, {'loss': 1.5})
  writer.close()
  header, scalar = _read_records(writer.path)
  assert b'brain.Event:2' in header
  # step 7 as field 2 varint, tag 'loss' and 1.5 as a little-endian float (field 2, fixed32)
  assert b'\x10\x07' in scalar and b'\x0a\x04loss\x15' + struct.pack('<f', 1.5) in scalar
