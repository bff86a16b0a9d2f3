"""Training metrics to `workdir/metrics.jsonl` and TensorBoard event files
(`workdir/tensorboard/`), written by process 0 only."""

import json
import pathlib

import jax

from argenseg_jax.training.tb_events import EventFileWriter


class MetricWriter:
  def __init__(self, workdir):
    self.enabled = jax.process_index() == 0
    if self.enabled:
      workdir = pathlib.Path(workdir)
      self._jsonl = open(workdir / 'metrics.jsonl', 'a', encoding='utf-8')  # pylint: disable=consider-using-with
      self._events = EventFileWriter(workdir / 'tensorboard')

  def write(self, step: int, values: dict[str, float]) -> None:
    if self.enabled:
      self._jsonl.write(json.dumps({'step': step, **values}) + '\n')
      self._jsonl.flush()
      self._events.scalars(step, values)

  def close(self) -> None:
    if self.enabled:
      self._jsonl.close()
      self._events.close()
