"""Logical-axis sharding: parameter axis names -> mesh axes ('data', 'fsdp', 'tensor').

Every parameter carries logical axis names (`embed`, `mlp`, `heads`, `vocab`,
`conv_in`, `conv_out`, ...). `param_shardings` maps them through a rule table onto a
mesh; an axis whose size does not divide evenly, or whose mesh axis is already used by
another dimension of the same array, stays replicated.
"""

from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ('data', 'fsdp', 'tensor')

# logical parameter axis -> mesh axis (None: replicated)
PARAM_RULES: dict[str, str | None] = {
    'embed': 'fsdp', 'mlp': 'tensor', 'heads': 'tensor', 'kv_heads': 'tensor',
    'vocab': 'tensor', 'conv_in': 'fsdp', 'conv_out': 'tensor', 'head_dim': None,
    'layers': None,
}


def make_mesh(data: int = 1, fsdp: int = 1, tensor: int = 1,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A `('data', 'fsdp', 'tensor')` mesh with automatic (GSPMD) axis types."""
  devices = list(devices if devices is not None else jax.devices())
  if data * fsdp * tensor != len(devices):
    raise ValueError(f'mesh data={data} x fsdp={fsdp} x tensor={tensor} needs '
                     f'{data * fsdp * tensor} devices, {len(devices)} available.')
  return Mesh(np.asarray(devices).reshape(data, fsdp, tensor), MESH_AXES,
              axis_types=(jax.sharding.AxisType.Auto,) * 3)


def mesh_spec(logical: Sequence[str | None], shape: Sequence[int], mesh: Mesh,
              rules: dict[str, str | None] = PARAM_RULES) -> PartitionSpec:
  """The mesh PartitionSpec of one array from its logical axis names."""
  used, out = set(), []
  for name, dim in zip(logical, shape):
    axis = rules.get(name) if name is not None else None
    if axis is None or axis in used or dim % mesh.shape[axis]:
      out.append(None)
    else:
      used.add(axis)
      out.append(axis)
  return PartitionSpec(*out)


def param_shardings(model: nnx.Module, mesh: Mesh,
                    rules: dict[str, str | None] = PARAM_RULES):
  """`NamedSharding` for every leaf of `nnx.state(model)` (same tree structure)."""
  state = nnx.state(model)
  logical = nnx.get_partition_spec(state)
  return jax.tree.map(
      lambda spec, leaf: NamedSharding(mesh, mesh_spec(tuple(spec), leaf.shape, mesh, rules)),
      logical, state, is_leaf=lambda x: isinstance(x, PartitionSpec))
