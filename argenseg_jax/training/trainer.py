"""The training loop behind `argenseg train --config C --workdir DIR`.

Restarting the same command resumes: the latest checkpoint in `DIR/checkpoints` gives
the model, the optimizer, the step and the data position, and the rng of step n is
`fold_in(seed, n)`, so the losses after a restart equal an uninterrupted run's. SIGTERM
(preemption) saves the current step and raises `Preempted` (`argenseg train` then exits
with status 75). A non-finite loss stops the run with the step number before anything is
saved, so the last checkpoint stays good.

What is trained is `config.task` (`TASKS`): ARGenSeg (`argenseg_task.py`) or a mask
VQ-VAE (`mask_vqvae_task.py`); the task gives the model, its data, loss, export and what
runs between steps, this loop the rest.

`DIR` is a local folder or a cloud one (`gs://bucket/run`; `user_input.path`). Writes
`DIR/metrics.jsonl`, TensorBoard events in `DIR/tensorboard/`, and at the end an inference
checkpoint `DIR/export/` (`argenseg segment --checkpoint DIR/export`, or for
the mask VQ-VAE `argenseg vae-roundtrip --checkpoint DIR/export`); `export_every=N` also
writes one every N steps to `DIR/exports/step_N/` (for learning curves: `argenseg eval`
on each).
"""

import logging
import signal
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from etils import epath

from argenseg_jax import distributed, sharding, user_input
from argenseg_jax.checkpoints import atomic
from argenseg_jax.progress import Progress
from argenseg_jax.training import optimizer, train_state, train_step
from argenseg_jax.training.argenseg_task import ARGenSegTask
from argenseg_jax.training.checkpointing import Checkpointer
from argenseg_jax.training.mask_vqvae_task import MaskVQVAETask
from argenseg_jax.training.metric_writer import MetricWriter

TASKS = {'argenseg': ARGenSegTask, 'mask_vqvae': MaskVQVAETask}


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or inf; the message names the step and the last checkpoint."""


class Preempted(Exception):
  """SIGTERM stopped the run early, after saving `step` in `directory`."""

  def __init__(self, step: int, num_steps: int, directory: epath.Path):
    super().__init__(f'stopped early by SIGTERM at step {step} of {num_steps}; saved step '
                     f'{step} in {directory}. Rerun the same command to resume.')
    self.step = step


def mesh_of(config: ml_collections.ConfigDict) -> jax.sharding.Mesh:
  """`config.mesh`, where one axis of size -1 takes the devices the others leave."""
  shape = dict(config.mesh)
  rest = [k for k, v in shape.items() if v == -1]
  if len(rest) > 1:
    raise ValueError(f'mesh {shape}: at most one axis may be -1.')
  if rest:
    shape[rest[0]] = max(jax.device_count() // -np.prod(list(shape.values())), 1)
  return sharding.make_mesh(**shape)


def _meta_config(config, model_cfg) -> dict:
  out = config.to_dict()
  out['model'] = model_cfg.to_dict()
  return out


def _install_sigterm():
  """A flag that SIGTERM sets (the loop saves and stops at the next step)."""
  stop = {'requested': False}

  def handler(signum, frame):  # pylint: disable=unused-argument
    stop['requested'] = True
  signal.signal(signal.SIGTERM, handler)
  return stop


def _check_finite(step: int, metrics: dict, ckpt: Checkpointer) -> None:
  """The loss (before the update) and the norm of the updated parameters must be finite."""
  bad = {k: metrics[k] for k in ('loss', 'param_norm') if not np.isfinite(metrics[k])}
  if bad:
    ckpt.wait()
    raise NonFiniteLossError(
        f'non-finite {bad} at step {step}; the last good checkpoint is step '
        f'{ckpt.latest_step()} in {ckpt.directory}. Lower the learning rate or check the '
        'data, then rerun to resume from it.')


def train(config: ml_collections.ConfigDict, workdir, inputs) -> dict:
  """Runs (or resumes) training to `config.num_steps`; returns the last metrics. Raises
  `Preempted` after saving when SIGTERM stops it early.

  `inputs`: the data of the task, this process's share
  (`data_pipelines.train_pipeline.training_inputs(config)`; see the task's docstring).
  The position of the batch iterator is saved with every checkpoint."""
  if config.task not in TASKS:
    raise ValueError(f'task must be one of {sorted(TASKS)}, got {config.task!r}.')
  task_type = TASKS[config.task]
  workdir = user_input.folder_path(user_input.path(workdir, absolute=True), 'workdir')
  if config.export:
    atomic.check_target(workdir / 'export', task_type.export_format)
  workdir.mkdir(parents=True, exist_ok=True)
  if config.distributed:
    distributed.initialize()
  task = task_type(config, workdir, inputs)
  mesh = mesh_of(config)
  tx = optimizer.make_optimizer(config.optimizer, config.num_steps)
  lay = train_state.layout(task.ctor, tx, mesh, config.frozen)

  procs = jax.process_count()
  rows = mesh.shape['data'] * mesh.shape['fsdp'] * config.accum_steps
  if config.batch_size % rows or config.batch_size % procs:
    raise ValueError(f'batch_size {config.batch_size} must be a multiple of data x fsdp x '
                     f'accum_steps = {rows} (mesh {dict(mesh.shape)}) and of the {procs} '
                     'processes; change batch_size or --config.mesh.')
  data_iter = iter(task.batches(config.batch_size // procs))

  ckpt = Checkpointer(workdir / 'checkpoints', max_to_keep=config.checkpoint.keep,
                      async_save=config.checkpoint.async_save)
  meta = _meta_config(config, task.model_cfg)
  if ckpt.latest_step() is not None:
    state = ckpt.restore(lay.abstract, data_iter, meta)
    logging.info('resumed from step %d of %s', int(state.step), ckpt.directory)
  else:
    state = task.init_state(tx, lay)
  step_fn = train_step.make_train_step(
      lay, tx, mesh, schedule=optimizer.learning_rate(config.optimizer, config.num_steps),
      loss=task.loss, counts=task.counts, accum_steps=config.accum_steps,
      compute_dtype=jnp.dtype(config.compute_dtype), seed=config.seed)
  hook = task.step_hook(lay)

  writer = MetricWriter(workdir)
  stop = _install_sigterm()
  step = int(state.step)
  bar = Progress(config.num_steps, enabled=jax.process_index() == 0, unit='steps', initial=step)
  metrics, logged, t0 = {}, step, time.perf_counter()
  try:
    while step < config.num_steps:
      batch = train_step.global_batch(next(data_iter), mesh)
      state, device_metrics = step_fn(state, batch)
      step += 1
      if hook is not None:
        state, hook_metrics = hook(state, step)
        device_metrics = {**device_metrics, **hook_metrics}
      stopping = stop['requested']
      save = step % config.checkpoint.every == 0 or step == config.num_steps or stopping
      if save or step % config.log_every == 0:
        metrics = {k: float(v) for k, v in jax.device_get(device_metrics).items()}
        _check_finite(step, metrics, ckpt)
        seconds = (time.perf_counter() - t0) / (step - logged)  # per step since the last log
        metrics.update(step_time_s=seconds,
                       **{f'{name}_per_s': metrics[name] / seconds for name in task.counts})
        writer.write(step, metrics)
        bar.update(step - bar.done, task.progress.format(**metrics))
        logged, t0 = step, time.perf_counter()
      if save:
        ckpt.save(step, state, data_iter, meta)
      if config.export_every and step % config.export_every == 0 and jax.process_index() == 0:
        task.export(train_state.model_of(lay, state), workdir / 'exports' / f'step_{step}',
                    overwrite=True)
      if stopping:
        break
  finally:
    bar.close()
    writer.close()
    ckpt.close()
  if step < config.num_steps:  # left the loop on SIGTERM
    raise Preempted(step, config.num_steps, ckpt.directory)
  if step == config.num_steps and config.export and jax.process_index() == 0:
    task.export(train_state.model_of(lay, state), workdir / 'export')
  return metrics
