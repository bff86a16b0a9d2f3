"""A progress bar for long loops (training steps, evaluation samples), drawn by tqdm."""

import tqdm


class Progress(tqdm.tqdm):
  """A tqdm bar on stderr whose `update` also takes an info string (e.g. the loss)."""

  def __init__(self, total: int, enabled: bool = True, unit: str = 'samples', initial: int = 0):
    super().__init__(total=total, disable=not enabled, unit=unit, initial=initial)

  @property
  def done(self) -> int:
    return self.n

  def update(self, n: int = 1, info: str = '') -> None:
    """Advances by `n`; `info` is shown after the rate and ETA."""
    self.set_postfix_str(info, refresh=False)
    super().update(n)
