"""Between stacked layer parameters and one key per layer.

The models hold each stack of identical layers as one array per parameter with a
leading layer axis (`layers/stack.py`): `language_model/layers/attention/wq [n, D, H, hd]`.
Checkpoints address one layer at a time (the original's `model.layers.3.attention...`),
and so do our conversion tables, whose paths read `language_model/layers/3/attention/wq`.
A stacked path has a `layers` component followed by the parameter's own path; its
per-layer paths put the layer index after that component.
"""

import re
from collections.abc import Mapping

import numpy as np

_PER_LAYER = re.compile(r'^(.*(?:^|/)layers)/(\d+)/(.+)$')
_STACKED = re.compile(r'^(.*(?:^|/)layers)/(?!\d+/)(.+)$')


def is_stacked(path: str) -> bool:
  """`a/layers/w` (stacked), not `a/layers/0/w` (one layer) nor `a/w`."""
  return _STACKED.match(path) is not None and _PER_LAYER.match(path) is None


def layer_path(path: str, index: int) -> str:
  """`a/layers/w`, 3 -> `a/layers/3/w`."""
  m = _STACKED.match(path)
  return f'{m.group(1)}/{index}/{m.group(2)}'


def unstack_shapes(shapes: Mapping[str, tuple]) -> dict[str, tuple]:
  """`{path: shape}` with each stacked `[n, ...]` entry replaced by its `n` layers."""
  out = {}
  for path, shape in shapes.items():
    if is_stacked(path):
      out.update({layer_path(path, i): tuple(shape[1:]) for i in range(shape[0])})
    else:
      out[path] = tuple(shape)
  return out


def unstack(flat: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """`{path: array}` with each stacked array replaced by its layers (views)."""
  out = {}
  for path, value in flat.items():
    if is_stacked(path):
      out.update({layer_path(path, i): value[i] for i in range(value.shape[0])})
    else:
      out[path] = value
  return out


def stacked_key(path: str) -> tuple[str, int] | None:
  """`a/layers/3/w` -> (`a/layers/w`, 3); None for a path outside a stack."""
  m = _PER_LAYER.match(path)
  return None if m is None else (f'{m.group(1)}/{m.group(3)}', int(m.group(2)))


def stacked_names(paths) -> set[str]:
  """The paths of `stack` without stacking anything."""
  return {key[0] if (key := stacked_key(p)) is not None else p for p in paths}


def stack(flat: Mapping[str, object]) -> dict[str, object]:
  """`{path: array}` with per-layer entries `a/layers/i/w` stacked into `a/layers/w`
  (layers 0..n-1, all present); other entries as they are."""
  out, layers = {}, {}
  for path, value in flat.items():
    key = stacked_key(path)
    if key is None:
      out[path] = value
    else:
      layers.setdefault(key[0], {})[key[1]] = value
  for path, by_index in layers.items():
    if sorted(by_index) != list(range(len(by_index))):
      raise ValueError(f'{path}: layers {sorted(by_index)} are not 0..{len(by_index) - 1}.')
    out[path] = np.stack([np.asarray(by_index[i]) for i in range(len(by_index))])
  return out
