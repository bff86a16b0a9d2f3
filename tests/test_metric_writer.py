"""`MetricWriter`: `metrics.jsonl` lines, and TensorBoard event files that read back."""

import struct

import jax
from tensorboardX.proto import event_pb2
from tensorboardX.record_writer import masked_crc32c

from argenseg_jax.training.metric_writer import MetricWriter


def _events(path):
  """The `Event`s of a record file: `len (u64) | crc(len) | data | crc(data)`."""
  data, out, i = path.read_bytes(), [], 0
  while i < len(data):
    length = data[i:i + 8]
    (n,) = struct.unpack('<Q', length)
    body = data[i + 12:i + 12 + n]
    assert struct.unpack('<I', data[i + 8:i + 12])[0] == masked_crc32c(length)
    assert struct.unpack('<I', data[i + 12 + n:i + 16 + n])[0] == masked_crc32c(body)
    out.append(event_pb2.Event.FromString(body))
    i += 16 + n
  return out


def test_scalars_read_back_with_their_steps(tmp_path):
  writer = MetricWriter(tmp_path)
  writer.write(3, {'loss': 1.5, 'lr': 0.25})
  writer.write(7, {'loss': 0.5})
  writer.close()
  assert (tmp_path / 'metrics.jsonl').read_text() == (
      '{"step": 3, "loss": 1.5, "lr": 0.25}\n{"step": 7, "loss": 0.5}\n')
  (path,) = (tmp_path / 'tensorboard').glob('events.out.tfevents.*')
  events = _events(path)
  assert events[0].file_version == 'brain.Event:2'
  assert [(e.step, v.tag, v.simple_value) for e in events for v in e.summary.value] == [
      (3, 'loss', 1.5), (3, 'lr', 0.25), (7, 'loss', 0.5)]


def test_other_processes_write_nothing(tmp_path, monkeypatch):
  monkeypatch.setattr(jax, 'process_index', lambda: 1)
  writer = MetricWriter(tmp_path)
  writer.write(3, {'loss': 1.5})
  writer.close()
  assert not list(tmp_path.iterdir())
