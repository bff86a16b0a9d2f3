"""A one-line progress bar for long loops (training steps, evaluation samples)."""

import datetime
import sys
import time


class Progress:
  """A one-line stderr progress bar with rate and ETA, redrawn at most every 0.5 s."""

  def __init__(self, total: int, enabled: bool = True, unit: str = 'samples', stream=None,
               initial: int = 0):
    self.total, self.enabled, self.unit = total, enabled, unit
    self.stream = stream or sys.stderr
    self.done, self.start, self.last, self.width = initial, time.perf_counter(), 0.0, 0
    self.initial, self.info = initial, ''

  def update(self, n: int, info: str = '') -> None:
    """Advances by `n`; `info` (e.g. the loss) is shown after the ETA."""
    self.done += n
    self.info = info
    now = time.perf_counter()
    if self.enabled and (now - self.last >= 0.5 or self.done >= self.total):
      self.last = now
      line = self.line(now - self.start)
      self.stream.write('\r' + line.ljust(self.width))
      self.stream.flush()
      self.width = len(line)

  def line(self, elapsed: float) -> str:
    rate = (self.done - self.initial) / elapsed if elapsed > 0 else 0.0
    eta = (self.total - self.done) / rate if rate > 0 else float('nan')
    filled = int(30 * self.done / max(self.total, 1))
    eta_text = '?' if eta != eta else str(datetime.timedelta(seconds=int(eta)))
    return (f'[{"#" * filled}{"." * (30 - filled)}] {self.done}/{self.total} {self.unit} '
            f'{rate:.2f}/s ETA {eta_text} {self.info}').rstrip()

  def close(self) -> None:
    if self.enabled:
      self.stream.write('\n')
