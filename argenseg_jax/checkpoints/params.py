"""Model construction helpers shared by every model: abstract build, compiled random
init, parameter shapes, and filling a model with converted parameters."""

from collections.abc import Callable

import jax
import numpy as np
from flax import nnx

from argenseg_jax.checkpoints import conversion, layer_stacks
from argenseg_jax.checkpoints.torch_files import CheckpointError


def abstract(ctor: Callable[[nnx.Rngs], nnx.Module]) -> nnx.Module:
  """`ctor(rngs)` with `ShapeDtypeStruct` parameters: nothing is allocated."""
  return nnx.eval_shape(lambda: ctor(nnx.Rngs(0)))


def init_rngs(seed: int) -> nnx.Rngs:
  """Rngs for random initialisation: XLA's RngBitGenerator ('rbg') instead of threefry
  compiles the init of a model with ~100 convolutions about twice as fast on CPU.
  Reproducible per seed on one platform (bits may differ across backends)."""
  return nnx.Rngs(jax.random.key(seed, impl='rbg'))


def init(ctor: Callable[[nnx.Rngs], nnx.Module], seed: int = 0) -> nnx.Module:
  """`ctor(rngs)` randomly initialised in one compiled program (not op by op)."""
  graphdef = nnx.graphdef(abstract(ctor))
  return nnx.merge(graphdef, jax.jit(lambda: nnx.state(ctor(init_rngs(seed))))())


def flat_params(model: nnx.Module) -> dict:
  """`{'a/b/0/kernel': array}` of the model's `nnx.Param`s."""
  return conversion.flatten(nnx.to_pure_dict(nnx.state(model, nnx.Param)))


def shapes(model: nnx.Module) -> dict[str, tuple]:
  """`{path: shape}` one layer at a time, as checkpoints and conversion tables address
  the parameters (a stack `a/layers/w [n, ...]` is listed as `a/layers/0/w` ...)."""
  return layer_stacks.unstack_shapes({k: tuple(v.shape) for k, v in flat_params(model).items()})


def count(model: nnx.Module) -> int:
  return sum(int(np.prod(s)) for s in shapes(model).values())


VOCAB_PADDING = 128  # at most this many rows short (`internlm2.VOCAB_MULTIPLE`)


def _pad_vocab(flat: dict, model: nnx.Module) -> dict:
  """`flat` with arrays shorter than the model's along a `vocab` axis zero-padded (the
  unpadded vocabulary of checkpoints written before the padding, `internlm2.py`)."""
  names = conversion.flatten(nnx.to_pure_dict(nnx.get_partition_spec(
      nnx.state(model, nnx.Param))))
  want = {k: tuple(v.shape) for k, v in flat_params(model).items()}
  out = dict(flat)
  for path, value in flat.items():
    if path in want and tuple(value.shape) != want[path] and 'vocab' in names[path]:
      axis = tuple(names[path]).index('vocab')
      rows = value.shape[axis]
      if not 0 < want[path][axis] - rows < VOCAB_PADDING:
        continue  # another vocabulary: `with_params` names the mismatch
      out[path] = np.moveaxis(conversion.TRANSFORMS['pad_rows'](
          np.moveaxis(np.asarray(value), axis, 0), rows, want[path][axis]), 0, axis)
  return out


def with_params(model: nnx.Module, flat: dict[str, np.ndarray]) -> nnx.Module:
  """`model` (abstract or not) with its parameters replaced by `flat`: the same paths,
  or layer stacks given one layer at a time as `shapes` lists them, and `vocab` axes
  possibly unpadded (both as checkpoints written before stacking and padding hold them)."""
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  pure = nnx.to_pure_dict(params)
  flat = _pad_vocab(layer_stacks.stack(flat), model)
  want = {k: tuple(v.shape) for k, v in flat_params(model).items()}
  wrong = sorted(set(want) ^ set(flat)) or [
      f'{k} {tuple(v.shape)} (the model needs {want[k]})' for k, v in flat.items()
      if tuple(v.shape) != want[k]]
  if wrong:
    raise CheckpointError(f'the parameters do not fit the model: {wrong[:3]}')
  nnx.replace_by_pure_dict(params, conversion.unflatten(
      {k: jax.numpy.asarray(v) for k, v in flat.items()}, pure))
  return nnx.merge(graphdef, params, rest)


def save_safetensors(model: nnx.Module, path) -> None:
  """Writes the model's parameters to one safetensors file, keyed by `flat_params` path."""
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  save_file({k: np.asarray(v) for k, v in flat_params(model).items()}, str(path))


def load_safetensors(model: nnx.Module, path) -> nnx.Module:
  """`model` (abstract) filled from a `save_safetensors` file; a missing, unused or
  misshaped key is a `CheckpointError` naming it."""
  from argenseg_jax.checkpoints.torch_files import read_safetensors  # pylint: disable=import-outside-toplevel
  wanted = {k: tuple(v.shape) for k, v in flat_params(model).items()}
  stored = read_safetensors(path)
  if set(stored) != set(wanted) and set(layer_stacks.stacked_names(stored)) == set(wanted):
    return with_params(model, stored)  # written before the layer stacks
  return with_params(model, conversion.convert([conversion.Rule(k, k) for k in wanted],
                                               stored, wanted))


def from_checkpoint(ctor: Callable[[nnx.Rngs], nnx.Module], table, checkpoint,
                    **convert_kwargs) -> nnx.Module:
  """`ctor(rngs)` with its parameters converted from `checkpoint` through `table`
  (strict; see `conversion.convert` for `prefix`, `excused`, `hint`)."""
  model = abstract(ctor)
  return with_params(model, conversion.convert(table, checkpoint, shapes(model),
                                               **convert_kwargs))


def to_state_dict(model: nnx.Module, table) -> dict[str, np.ndarray]:
  """The model's parameters in a checkpoint's key names and layouts (the inverse of the
  conversion `table`; layer stacks split into their layers)."""
  return conversion.to_checkpoint(table, layer_stacks.unstack(
      {k: np.asarray(v) for k, v in flat_params(model).items()}))
