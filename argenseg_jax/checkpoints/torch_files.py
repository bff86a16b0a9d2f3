"""Reading PyTorch weight files into numpy, without ever unpickling code; local files
are memory-mapped, cloud ones (`user_input.path`) read whole."""

import io

import numpy as np
from etils import epath

from argenseg_jax import user_input


class CheckpointError(ValueError):
  """A checkpoint that cannot be used: the message names the key and the fix."""


def _require_file(path: epath.Path) -> None:
  if not path.exists():
    raise FileNotFoundError(f'checkpoint not found: {path}')
  if not path.is_file():
    raise CheckpointError(f'{path} is a directory; expected a weight file.')


def read_pth(path) -> dict[str, np.ndarray]:
  """A `.pth` state_dict as `{key: float32/int ndarray}` (`torch.load(weights_only=True)`)."""
  path = user_input.path(path)
  _require_file(path)
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ImportError(
        f'reading {path.name} needs PyTorch: pip install -e ".[convert]" '
        '(or convert once elsewhere with `argenseg convert`).') from None
  try:
    if user_input.is_local(path):
      obj = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    else:
      obj = torch.load(io.BytesIO(path.read_bytes()), map_location='cpu', weights_only=True)
  except Exception as e:  # torch raises many types for corrupt files.
    raise CheckpointError(f'{path} is not a readable PyTorch weights file '
                          f'(torch.load(weights_only=True) said: {e})') from e
  if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
    keys = list(obj)[:5] if isinstance(obj, dict) else type(obj).__name__
    raise CheckpointError(f'{path} is not a plain state_dict of tensors (top level: '
                          f'{keys}); extract the model state_dict and save it alone.')
  return {k: v.detach().to(torch.float32 if v.is_floating_point() else v.dtype).numpy()
          for k, v in obj.items()}


def read_safetensors(path) -> dict[str, np.ndarray]:
  """A safetensors file as `{key: ndarray}` (no torch needed)."""
  from safetensors.numpy import load, load_file  # pylint: disable=import-outside-toplevel
  path = user_input.path(path)
  _require_file(path)
  try:
    return load_file(str(path)) if user_input.is_local(path) else load(path.read_bytes())
  except Exception as e:
    raise CheckpointError(f'{path} is not a readable safetensors file: {e}') from e
