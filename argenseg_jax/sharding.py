"""Logical-axis sharding: axis names -> mesh axes ('data', 'fsdp', 'tensor').

Every parameter carries logical axis names (`embed`, `mlp`, `heads`, `vocab`,
`conv_in`, `conv_out`, ...). `param_shardings` maps them through `PARAM_RULES` onto a
mesh; an axis whose size does not divide evenly, or whose mesh axis is already used by
another dimension of the same array, stays replicated.

fsdp fallback (big_vision's `fsdp` rule): a parameter that the rules leave without the
'fsdp' axis (unannotated, or its annotated dimensions do not divide) and that is larger
than `FSDP_FALLBACK_MIN_BYTES` as built gets 'fsdp' on its largest still-replicated
dimension divisible by the fsdp size. Smaller arrays stay as the rules put them:
sharding a few kilobytes costs more in collectives than it saves.

Activations use their own table, `ACT_RULES` (MaxText's: batch over data and fsdp,
the residual stream's embedding, heads and mlp over tensor, length unsharded), applied
by `constrain`, which is a no-op unless a mesh is set with `jax.set_mesh`. The decoder
constrains each array the planner sizes, by the same names (`models/internlm2.py`).
"""

import math
from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from argenseg_jax import config_args
from argenseg_jax.layers import stack

MESH_AXES = ('data', 'fsdp', 'tensor')

Rule = str | tuple[str, ...] | None

# logical parameter axis -> mesh axis (None: replicated)
PARAM_RULES: dict[str, Rule] = {
    'embed': 'fsdp', 'mlp': 'tensor', 'heads': 'tensor', 'kv_heads': 'tensor',
    'vocab': 'tensor', 'conv_in': 'fsdp', 'conv_out': 'tensor', 'head_dim': None,
    'layers': None,  # a layer stack's axis (`layers/stack.py`): each device holds every layer
}

# logical activation axis -> mesh axes; a tuple shards one dimension over several axes
ACT_RULES: dict[str, Rule] = {
    'act_batch': ('data', 'fsdp'), 'act_len': None, 'act_embed': 'tensor',
    'act_heads': 'tensor', 'act_kv_heads': 'tensor', 'act_head_dim': None,
    'act_mlp': 'tensor', 'act_vocab': 'tensor',
}

FSDP_FALLBACK_MIN_BYTES = 4 * 2 ** 20


def make_mesh(data: int = 1, fsdp: int = 1, tensor: int = 1,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A `('data', 'fsdp', 'tensor')` mesh with automatic (GSPMD) axis types."""
  devices = list(devices if devices is not None else jax.devices())
  if data * fsdp * tensor != len(devices):
    raise ValueError(f'mesh data={data} x fsdp={fsdp} x tensor={tensor} needs '
                     f'{data * fsdp * tensor} devices, {len(devices)} available.')
  return Mesh(np.asarray(devices).reshape(data, fsdp, tensor), MESH_AXES,
              axis_types=(jax.sharding.AxisType.Auto,) * 3)


def abstract_mesh(data: int = 1, fsdp: int = 1, tensor: int = 1) -> jax.sharding.AbstractMesh:
  """The same mesh without devices, any size (planning a pod from a laptop)."""
  return jax.sharding.AbstractMesh((data, fsdp, tensor), MESH_AXES,
                                   axis_types=(jax.sharding.AxisType.Auto,) * 3)


def parse_mesh(text: str) -> dict[str, int]:
  """`'data=1,fsdp=4,tensor=2'` -> `{'data': 1, 'fsdp': 4, 'tensor': 2}` (missing: 1), in
  the `key=value` syntax of config args."""
  try:
    sizes = dict(config_args.parse_arg(text, **dict.fromkeys(MESH_AXES, 1)))
  except ValueError as e:
    raise ValueError(f'mesh {text!r}: {e} Expected AXIS=SIZE items, e.g. '
                     'data=1,fsdp=4,tensor=2.') from None
  if min(sizes.values()) < 1:
    raise ValueError(f'mesh {text!r}: every AXIS=SIZE needs SIZE >= 1.')
  return sizes


def spec_axes(rule: Rule) -> tuple[str, ...]:
  """The mesh axes of a rule or of one PartitionSpec entry."""
  return () if rule is None else (rule,) if isinstance(rule, str) else tuple(rule)


def _used(spec: Sequence) -> set[str]:
  return {a for entry in spec for a in spec_axes(entry)}


def mesh_spec(logical: Sequence[str | None], shape: Sequence[int], mesh,
              rules: dict[str, Rule] = PARAM_RULES) -> PartitionSpec:
  """The mesh PartitionSpec of one array from its logical axis names (`mesh` may be a
  `Mesh` or an `AbstractMesh`). A tuple rule keeps its longest prefix of mesh axes that
  are unused and whose size product divides the dimension; missing names replicate."""
  used, out = set(), []
  for i, dim in enumerate(shape):
    name = logical[i] if i < len(logical) else None
    axes, size = [], 1
    for axis in spec_axes(rules.get(name)) if name is not None else ():
      if axis in used or axis not in mesh.shape or dim % (size * mesh.shape[axis]):
        break
      axes.append(axis)
      size *= mesh.shape[axis]
    used.update(axes)
    out.append(None if not axes else axes[0] if len(axes) == 1 else tuple(axes))
  return PartitionSpec(*out)


def fsdp_fallback(spec: PartitionSpec, shape: Sequence[int], nbytes: int, mesh,
                  min_bytes: int = FSDP_FALLBACK_MIN_BYTES,
                  stacked: bool = False) -> PartitionSpec:
  """`spec` with 'fsdp' put on the largest free dimension divisible by the fsdp size
  when `spec` lacks 'fsdp' and the array has more than `min_bytes` (else unchanged).
  `stacked`: dimension 0 is a layer stack (`layers`), never chosen, and `nbytes`
  counts one layer, so a stack is placed like each of its layers."""
  n = mesh.shape.get('fsdp', 1)
  entries = list(spec) + [None] * (len(shape) - len(spec))
  if stacked:
    nbytes //= shape[0]
  if n == 1 or nbytes <= min_bytes or 'fsdp' in _used(entries):
    return spec
  free = [i for i, (e, d) in enumerate(zip(entries, shape))
          if e is None and d % n == 0 and not (stacked and i == 0)]
  if not free:
    return spec
  entries[max(free, key=lambda i: shape[i])] = 'fsdp'
  return PartitionSpec(*entries)


def param_specs(model: nnx.Module, mesh, rules: dict[str, Rule] = PARAM_RULES,
                min_bytes: int = FSDP_FALLBACK_MIN_BYTES):
  """Mesh `PartitionSpec` of every leaf of `nnx.state(model)` (same tree structure;
  `model` may also be an `nnx.State`): the rules, then the fsdp fallback."""
  state = nnx.state(model)
  logical = nnx.get_partition_spec(state)

  def spec(names, leaf):
    return fsdp_fallback(mesh_spec(tuple(names), leaf.shape, mesh, rules), leaf.shape,
                         math.prod(leaf.shape) * leaf.dtype.itemsize, mesh, min_bytes,
                         stacked=bool(names) and names[0] == stack.AXIS)
  return jax.tree.map(spec, logical, state, is_leaf=lambda x: isinstance(x, PartitionSpec))


def param_shardings(model: nnx.Module, mesh, rules: dict[str, Rule] = PARAM_RULES,
                    min_bytes: int = FSDP_FALLBACK_MIN_BYTES):
  """`NamedSharding` for every leaf of `nnx.state(model)` (same tree structure)."""
  return jax.tree.map(lambda s: NamedSharding(mesh, s),
                      param_specs(model, mesh, rules, min_bytes),
                      is_leaf=lambda x: isinstance(x, PartitionSpec))


def constrain(x: jax.Array, logical: Sequence[str | None],
              rules: dict[str, Rule] = ACT_RULES) -> jax.Array:
  """`with_sharding_constraint` of activation `x` by logical names, e.g.
  `constrain(h, ('act_batch', 'act_len', 'act_embed'))` on `[B, L, D]`; `x` unchanged
  when no mesh is set (`jax.set_mesh`), so single-device code runs as before."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return x
  return jax.lax.with_sharding_constraint(x, mesh_spec(logical, x.shape, mesh, rules))
