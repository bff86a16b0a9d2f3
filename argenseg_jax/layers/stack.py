"""A stack of identical layers run by one `lax.scan`, as MaxText runs its decoder.

  self.layers = stack.build(lambda rngs: Layer(cfg, rngs), cfg.num_hidden_layers, rngs)
  x, ys = stack.run(self.layers, body, x, xs, scan=True, remat='nothing_saveable')

`build` creates the layers once, vectorised: every parameter gets a leading axis of
size `n` named `layers` (logical axis, so `sharding.PARAM_RULES` can place it), and
the paths are `.../layers/<param path>` without a layer index. `run` applies
`body(layer, carry, x) -> (carry, y)` to layer 0, 1, ... with `x` the per-layer slice
of `xs` and stacks the `y`s. With `scan=True` the program holds one layer body, so its
compile time does not grow with depth; `scan=False` unrolls the same parameters in a
Python loop (kept for the compile-time comparison of `benchmarks/compile_bench.py`).
"""

from collections.abc import Callable

import jax
from flax import nnx

AXIS = 'layers'

# `remat` names -> what the backward pass may keep of a layer's forward
REMAT_POLICIES = {
    'nothing_saveable': jax.checkpoint_policies.nothing_saveable,
    'dots_saveable': jax.checkpoint_policies.dots_saveable,
    'dots_with_no_batch_dims_saveable': jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def build(make: Callable[[nnx.Rngs], nnx.Module], n: int, rngs: nnx.Rngs) -> nnx.Module:
  """`n` layers `make(rngs)` as one module whose parameters are stacked `[n, ...]`."""
  @nnx.split_rngs(splits=n)
  @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: AXIS})
  def make_all(layer_rngs):
    return make(layer_rngs)
  return make_all(rngs)


def depth(layers: nnx.Module) -> int:
  """The number of layers of a `build` stack."""
  return jax.tree.leaves(nnx.state(layers))[0].shape[0]


def layer(layers: nnx.Module, index: int) -> nnx.Module:
  """Layer `index` of a `build` stack as a module of its own (its parameters sliced)."""
  return nnx.merge(nnx.graphdef(layers),
                   jax.tree.map(lambda a: a[index], nnx.state(layers)))


def check_remat(remat: str | bool) -> None:
  if remat and remat is not True and remat not in REMAT_POLICIES:
    raise ValueError(f'remat must be false, true or one of {sorted(REMAT_POLICIES)}, '
                     f'got {remat!r}.')


def run(layers: nnx.Module, body: Callable, carry, xs=None, *, count: int | None = None,
        scan: bool = True, remat: str | bool = False):
  """`(carry, ys)` of `body(layer, carry, x)` over the first `count` layers (default
  all). `remat`: recompute each layer in the backward pass, keeping what the named policy
  (`REMAT_POLICIES`; True = 'nothing_saveable') allows."""
  check_remat(remat)
  graphdef, state = nnx.split(layers)
  n = depth(layers) if count is None else count
  if n != depth(layers):
    state = jax.tree.map(lambda a: a[:n], state)

  def step(carry, inputs):
    layer_state, x = inputs
    return body(nnx.merge(graphdef, layer_state), carry, x)
  if remat:
    step = jax.checkpoint(step, policy=REMAT_POLICIES[
        'nothing_saveable' if remat is True else remat])
  if scan:
    return jax.lax.scan(step, carry, (state, xs), length=n)
  ys = []
  for i in range(n):
    carry, y = step(carry, jax.tree.map(lambda a, i=i: a[i], (state, xs)))
    ys.append(y)
  return carry, jax.tree.map(lambda *a: jax.numpy.stack(a), *ys)
