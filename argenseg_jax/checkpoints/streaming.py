"""Writing converted parameters to an orbax checkpoint a group of arrays at a time.

`save_in_groups` writes the same PyTree checkpoint that `ocp.StandardCheckpointer().save`
does (OCDBT, zarr; `StandardCheckpointer().restore` reads it, sharded targets included)
without ever holding the whole tree: converted arrays are collected into groups of at
most `max(largest KeyRead, MIN_GROUP_BYTES)` bytes, each group goes out through orbax's
partial save (`ocp.v1.partial.save`) and is dropped, and `partial.finalize` merges the
groups' OCDBT databases into one checkpoint. The writes are set up to copy nothing:
C-contiguous numpy arrays, no defensive host copy (`deepcopy_host_arrays=False`) and no
compression, so tensorstore writes straight from the array (zstd would need a second
buffer as large as the array while it is encoded).
"""

import os
import pathlib
import shutil
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from orbax.checkpoint import v1 as ocp_v1

from argenseg_jax.checkpoints import layer_stacks
from argenseg_jax.checkpoints.conversion import KeyRead, flatten

# Smallest group: fewer, larger partial saves (each one costs a little more than the one
# before, and finalize merges them all).
MIN_GROUP_BYTES = 128 * 2 ** 20


def _key_paths(tree: Mapping, prefix: tuple = ()) -> dict[str, tuple]:
  """`{'a/b/0/kernel': ('a', 'b', 0, 'kernel')}`: the typed keys of each leaf of `tree`."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, Mapping):
      out.update(_key_paths(v, prefix + (k,)))
    else:
      out['/'.join(map(str, prefix + (k,)))] = prefix + (k,)
  return out


def _nest(flat: Mapping[str, object], keys: Mapping[str, tuple]) -> dict:
  """`{path: leaf}` -> the nested dict those leaves occupy in the full tree."""
  tree = {}
  for path, value in flat.items():
    *parents, last = keys[path]
    node = tree
    for k in parents:
      node = node.setdefault(k, {})
    node[last] = value
  return tree


def _context() -> ocp_v1.Context:
  ctx = ocp_v1.Context()
  ctx.array.saving.use_zarr3 = False  # as StandardCheckpointer
  ctx.array.saving.use_compression = False
  ctx.memory.deepcopy_host_arrays = False
  return ctx


class _Stacks:
  """Layer stacks being assembled from per-layer arrays (`checkpoints/layer_stacks.py`):
  `add` returns the stacked array once its last layer arrives."""

  def __init__(self, like_leaves: Mapping[str, object]):
    self.like, self.buffers, self.missing = like_leaves, {}, {}

  def add(self, path: str, value: np.ndarray) -> tuple[str, np.ndarray] | None:
    stacked, index = layer_stacks.stacked_key(path)
    if stacked not in self.buffers:
      shape = tuple(self.like[stacked].shape)
      self.buffers[stacked] = np.empty(shape, value.dtype)
      self.missing[stacked] = set(range(shape[0]))
    self.buffers[stacked][index] = value
    self.missing[stacked].discard(index)
    if self.missing[stacked]:
      return None
    del self.missing[stacked]
    return stacked, self.buffers.pop(stacked)


def _read_order(reads: Sequence[KeyRead]) -> list[KeyRead]:
  """`reads` with the layers of each stack next to each other, so that one stack at a
  time is assembled."""
  def key(r):
    found = layer_stacks.stacked_key(r.ours[0])
    return ('', 0) if found is None else found
  return sorted(reads, key=key)


def save_in_groups(directory, reads: Sequence[KeyRead], like: Mapping,
                   shardings: Mapping[str, jax.sharding.Sharding] | None = None) -> None:
  """Writes the parameters that `reads` give as one orbax PyTree checkpoint at
  `directory`, the tree shaped like the pure dict `like` (same paths and key types).
  Reads that give one layer of a stacked parameter (`a/layers/3/w` for `a/layers/w`)
  are stacked first: a stack is written once all its layers are read, so host memory
  holds about the largest stack.

  `shardings` (`{path: Sharding}`): each array is placed with `jax.device_put` as soon
  as it is complete, so that orbax writes it shard by shard (on a CPU-only host this
  adds a copy of the array being placed). `directory` must not exist; a sibling
  `<name>.groups` is used while writing.
  """
  directory = pathlib.Path(directory)
  keys = _key_paths(like)
  stacks = _Stacks(flatten(like))
  budget = max([r.nbytes for r in reads] + [MIN_GROUP_BYTES])
  staging = directory.with_name(f'{directory.name}.groups')
  with _context():
    group, size = {}, 0
    for r in _read_order(reads):
      if group and size + r.nbytes > budget:
        ocp_v1.partial.save(staging, _nest(group, keys))
        group, size = {}, 0
      stacked = False
      for path, value in r.read().items():
        if path not in keys:
          done = stacks.add(path, value)
          if done is None:
            continue
          (path, value), stacked = done, True
          size += value.nbytes
        group[path] = value if shardings is None else jax.device_put(value, shardings[path])
      size += r.nbytes
      if stacked and size >= budget:  # a finished stack goes out at once
        ocp_v1.partial.save(staging, _nest(group, keys))
        group, size = {}, 0
    if group:
      ocp_v1.partial.save(staging, _nest(group, keys))
    del group
    ocp_v1.partial.finalize(staging)
  # finalize leaves the tree in one subdirectory of `staging`, with orbax v1's
  # checkpoint-level files beside it; StandardCheckpointer reads the tree directory.
  (tree,) = [d for d in staging.iterdir() if (d / '_METADATA').is_file()]
  os.replace(tree, directory)
  shutil.rmtree(staging)

