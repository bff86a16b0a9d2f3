"""Checks shared by the dataset readers; every error names the file and the sample.

A reader skips an entry only for a documented reason and records it in its `skipped`
list as `(origin, reason)`; a reader left with no sample raises `EmptyDatasetError`.
"""

from PIL import Image

from argenseg_jax import user_input


class EmptyDatasetError(ValueError):
  """A reader found no usable sample; the message names the file, the split and why."""


def require_samples(samples: list, source, split: str | None, skipped: list[tuple[str, str]]):
  """Raises `EmptyDatasetError` when `samples` is empty, saying what was skipped."""
  if samples:
    return
  where = f'{source} (split {split!r})' if split is not None else str(source)
  reasons = sorted({reason for _, reason in skipped})
  why = f'; {len(skipped)} entries were skipped: {reasons}' if skipped else ''
  raise EmptyDatasetError(f'{where}: no samples{why}.')


def require_image(path: str, origin: str, shape: tuple[int, int] | None = None) -> str:
  """Returns `path` after checking that the image exists and, given `shape = (H, W)`,
  that its header has that size (the masks were made for it)."""
  if not user_input.path(path).is_file():
    raise FileNotFoundError(f'{origin}: image not found: {path}')
  if shape is not None:
    try:
      with user_input.path(path).open('rb') as f, Image.open(f) as img:
        width, height = img.size
    except (OSError, SyntaxError) as e:
      raise ValueError(f'{origin}: {path} is not a readable image: {e}') from None
    if (height, width) != tuple(shape):
      raise ValueError(f'{origin}: image {path} is {width}x{height} but its masks are '
                       f'{shape[1]}x{shape[0]} (W x H).')
  return path
