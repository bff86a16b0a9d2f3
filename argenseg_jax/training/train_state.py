"""`TrainState` and its layout: which parameters train, and where every array lives.

The model is split once into `graphdef`, the trainable parameters (f32 master copy) and
everything else (`frozen`: the ViT backbone and the VQ-VAE by default, plus non-parameter
variables). The frozen parts (the train config's `frozen`) are the one rule of what trains:
a part is a module name anywhere on a parameter's path (`vision_model`, `image_tokenizer`),
matched by `is_frozen` here and in `argenseg plan`. Only the trainable part has gradients
and optimizer state (so no weight decay either). Shardings come from the logical
axis names of every variable (`argenseg_jax.sharding`), computed on the abstract model,
so nothing is allocated before `jax.jit(init, out_shardings=...)` places it.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import flax
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from argenseg_jax import sharding
from argenseg_jax.checkpoints import params as params_lib

FROZEN_PARTS = ('vision_model', 'image_tokenizer')  # as the original trains (spec §5.5)


@flax.struct.dataclass
class TrainState:
  step: jax.Array          # [] int32, optimizer steps done
  params: nnx.State        # trainable parameters
  frozen: nnx.State        # the rest of the model's variables
  opt_state: optax.OptState


class Layout(NamedTuple):
  graphdef: nnx.GraphDef
  abstract: TrainState     # ShapeDtypeStructs carrying their shardings
  shardings: TrainState    # NamedSharding per leaf


def is_frozen(path: Sequence, frozen_parts: Sequence[str]) -> bool:
  """Whether a parameter `path` (its keys) has one of `frozen_parts` as a key."""
  return any(str(key) in frozen_parts for key in path)


def check_frozen_parts(paths: Iterable[Sequence], frozen_parts: Sequence[str]) -> tuple[str, ...]:
  """`frozen_parts` without empty names ('' freezes nothing); ValueError for a part on
  none of the parameter `paths`, so that a typo does not train everything."""
  if isinstance(frozen_parts, str):
    raise ValueError('frozen parts must be a sequence of names, got the string '
                     f'{frozen_parts!r}.')
  paths = [tuple(map(str, p)) for p in paths]
  parts = tuple(p for p in frozen_parts if p)
  for part in parts:
    if not any(part in path for path in paths):
      top = sorted({path[0] for path in paths if path})
      raise ValueError(f'unknown frozen part {part!r}: no parameter path contains it. A part '
                       'is a module name on the path (e.g. vision_model, image_tokenizer); '
                       f'top-level parts: {", ".join(top)}.')
  return parts


def trainable(frozen_parts: Sequence[str]) -> nnx.filterlib.Filter:
  """Parameters not `is_frozen`."""
  return nnx.All(nnx.Param, nnx.Not(lambda path, _: is_frozen(path, frozen_parts)))


def split(model: nnx.Module, frozen_parts: Sequence[str]):
  """`(graphdef, trainable params, frozen rest)`; ValueError for an unknown frozen part."""
  paths = [path for path, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))]
  return nnx.split(model, trainable(check_frozen_parts(paths, frozen_parts)), ...)


def layout(ctor: Callable[[nnx.Rngs], nnx.Module], tx: optax.GradientTransformation,
           mesh: Mesh, frozen_parts: Sequence[str] = FROZEN_PARTS) -> Layout:
  """The state's structure, shapes and shardings, from `jax.eval_shape` alone."""
  graphdef, params, frozen = split(params_lib.abstract(ctor), frozen_parts)
  replicated = NamedSharding(mesh, PartitionSpec())
  param_sh = sharding.param_shardings(params, mesh)
  opt_abstract = jax.eval_shape(tx.init, params)
  opt_sh = optax.tree_map_params(tx, lambda _, s: s, opt_abstract, param_sh,
                                 transform_non_params=lambda _: replicated)
  shardings = TrainState(replicated, param_sh, sharding.param_shardings(frozen, mesh), opt_sh)
  abstract = TrainState(jax.ShapeDtypeStruct((), jnp.int32), params, frozen, opt_abstract)
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract, shardings)
  return Layout(graphdef, abstract, shardings)


def init_state(ctor: Callable[[nnx.Rngs], nnx.Module], tx: optax.GradientTransformation,
               lay: Layout, frozen_parts: Sequence[str] = FROZEN_PARTS, seed: int = 0,
               model: nnx.Module | None = None) -> TrainState:
  """A fresh state: random (`ctor(params.init_rngs(seed))` in one compiled program, born
  sharded) or, given `model`, its weights placed on the mesh."""
  def fresh(params, frozen):
    return TrainState(jnp.zeros((), jnp.int32), params, frozen, tx.init(params))
  if model is None:
    def random_init():
      _, params, frozen = split(ctor(params_lib.init_rngs(seed)), frozen_parts)
      return fresh(params, frozen)
    return jax.jit(random_init, out_shardings=lay.shardings)()
  _, params, frozen = split(model, frozen_parts)
  params, frozen = jax.device_put((params, frozen), (lay.shardings.params, lay.shardings.frozen))
  return jax.jit(fresh, out_shardings=lay.shardings)(params, frozen)


def with_image_tokenizer(state: TrainState, lay: Layout, vqvae: nnx.Module) -> TrainState:
  """`state` with the frozen `image_tokenizer` replaced by `vqvae`'s variables (a mask
  VQ-VAE trained beforehand, e.g. by `argenseg train --config configs/mask_vqvae.py`)."""
  if any(path[0] == 'image_tokenizer' for path, _ in nnx.to_flat_state(state.params)):
    raise ValueError('the image tokenizer is trainable here; add "image_tokenizer" to the '
                     'frozen parts to load a trained one.')
  loaded = dict(nnx.to_flat_state(nnx.state(vqvae)))
  flat = [(path, loaded[path[1:]] if path[0] == 'image_tokenizer' else value)
          for path, value in nnx.to_flat_state(state.frozen)]
  frozen = jax.device_put(nnx.from_flat_state(flat), lay.shardings.frozen)
  return state.replace(frozen=frozen)


def model_of(lay: Layout, state: TrainState) -> nnx.Module:
  """The model with `state`'s weights (for export or evaluation)."""
  return nnx.merge(lay.graphdef, state.params, state.frozen)
