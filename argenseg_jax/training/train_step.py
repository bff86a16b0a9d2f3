"""The jitted train step: gradient accumulation, mixed precision, AdamW, metrics.

  step(state, batch) -> (state, metrics)

`batch` is the task's dict (ARGenSeg: `data_pipelines/train_pipeline.py`) as global
arrays sharded over ('data', 'fsdp') on the leading axis; it is split into `accum_steps`
micro batches run by `lax.scan`, their gradients averaged (each micro batch's loss is, for
ARGenSeg, the original's mean over its own targets). Trainable weights are cast to
`compute_dtype` inside the loss, so gradients and the optimizer stay in the f32 master
copy. The rng of step n is `fold_in(rng, n)`: a resumed run draws the same numbers.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from argenseg_jax.training.train_state import Layout, TrainState

BATCH_AXES = ('data', 'fsdp')


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def _cast(tree, dtype):
  return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                      tree)


def argenseg_loss(model, micro: dict, rng: jax.Array, compute_dtype) -> tuple[jax.Array, dict]:
  """ARGenSeg's training loss of one micro batch and its text and gen parts."""
  out = model.train_forward(micro['ids'], micro['labels'], micro['token_mask'],
                            micro['pixels'].astype(compute_dtype), micro['image_flags'],
                            micro['masks'], micro['mask_flags'], drop_path_rng=rng)
  return out.loss, {'text_loss': out.text_loss, 'gen_loss': out.gen_loss}


# ARGenSeg's counts of a whole batch (the trainer also logs them per second)
TOKENS = {'tokens': lambda batch: batch['token_mask'].sum()}


def make_train_step(lay: Layout, tx: optax.GradientTransformation, mesh: Mesh, *,
                    schedule: optax.Schedule, loss: Callable = argenseg_loss,
                    counts: dict[str, Callable] = TOKENS, accum_steps: int = 1,
                    compute_dtype=jnp.float32, seed: int = 0) -> Callable:
  """The compiled `step(state, batch) -> (state, metrics)`; `state` is donated.

  `loss(model, micro_batch, rng, compute_dtype) -> (loss, aux metrics)`; `counts`: name
  -> function of the whole batch, added to the metrics."""
  base_rng = jax.random.key(seed)

  def loss_fn(params, frozen, micro, rng):
    return loss(nnx.merge(lay.graphdef, _cast(params, compute_dtype), frozen), micro, rng,
                compute_dtype)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    rng = jax.random.fold_in(base_rng, state.step)
    micro = jax.tree.map(lambda x: x.reshape(accum_steps, -1, *x.shape[1:]), batch)

    def accumulate(grads, xs):
      mb, r = xs
      (loss, aux), g = grad_fn(state.params, state.frozen, mb, r)
      return jax.tree.map(jnp.add, grads, g), dict(aux, loss=loss)

    zeros = jax.tree.map(jnp.zeros_like, state.params)
    grads, metrics = jax.lax.scan(accumulate, zeros,
                                  (micro, jax.random.split(rng, accum_steps)))
    grads = jax.tree.map(lambda g: g / accum_steps, grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = jax.tree.map(jnp.mean, metrics)
    metrics.update(grad_norm=optax.tree.norm(grads), update_norm=optax.tree.norm(updates),
                   param_norm=optax.tree.norm(params), lr=schedule(state.step),
                   **{name: count(batch) for name, count in counts.items()})
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  compiled = jax.jit(step, in_shardings=(lay.shardings, batch_sharding(mesh)),
                     out_shardings=(lay.shardings, None), donate_argnums=0)
  return OnMesh(compiled, mesh)


class OnMesh:
  """A jitted function called (or lowered, e.g. on abstract inputs) under `mesh`, so
  that the activation constraints (`sharding.constrain`) see it."""

  def __init__(self, jitted, mesh: Mesh):
    self.jitted, self.mesh = jitted, mesh

  def __call__(self, *args):
    with jax.set_mesh(self.mesh):
      return self.jitted(*args)

  def lower(self, *args):
    with jax.set_mesh(self.mesh):
      return self.jitted.lower(*args)


def global_batch(local: dict, mesh: Mesh) -> dict:
  """This process's numpy batch -> global arrays sharded over ('data', 'fsdp')."""
  sh = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sh, v) for k, v in local.items()}
