"""Parameters named by logical axes (`'embed'`, `'heads'`, ...) and placed later.

The names are metadata only: devices are chosen from them by `sharding.py` (abstract
init -> shardings -> `jax.jit(init, out_shardings=...)`), so every parameter is created
with `eager_sharding=False` here rather than by flipping flax's process-wide default.
"""

import jax
from flax import nnx


def partitioned(init, axes: tuple[str | None, ...]):
  """An initializer whose parameter carries the logical `axes`, one per dimension."""
  return nnx.with_partitioning(init, axes, eager_sharding=False)


def param(value: jax.Array, axes: tuple[str | None, ...]) -> nnx.Param:
  """`nnx.Param(value)` with the logical `axes`, one per dimension."""
  return nnx.Param(value, out_sharding=axes, eager_sharding=False)
