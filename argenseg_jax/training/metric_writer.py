"""Training metrics to `workdir/metrics.jsonl` and TensorBoard event files
(`workdir/tensorboard/`, written by tensorboardX), by process 0 only."""

import json
import pathlib

import jax
import tensorboardX


class MetricWriter:
  def __init__(self, workdir):
    self.enabled = jax.process_index() == 0
    if self.enabled:
      workdir = pathlib.Path(workdir)
      self._jsonl = open(workdir / 'metrics.jsonl', 'a', encoding='utf-8')  # pylint: disable=consider-using-with
      self._events = tensorboardX.SummaryWriter(str(workdir / 'tensorboard'))

  def write(self, step: int, values: dict[str, float]) -> None:
    if self.enabled:
      self._jsonl.write(json.dumps({'step': step, **values}) + '\n')
      self._jsonl.flush()
      for tag, value in values.items():
        self._events.add_scalar(tag, value, step)
      self._events.flush()

  def close(self) -> None:
    if self.enabled:
      self._jsonl.close()
      self._events.close()
