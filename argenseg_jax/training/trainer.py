"""The training loop behind `argenseg train --config C --workdir DIR`.

Restarting the same command resumes: the latest checkpoint in `DIR/checkpoints` gives
the model, the optimizer, the step and the data position, and the rng of step n is
`fold_in(seed, n)`, so the losses after a restart equal an uninterrupted run's. SIGTERM
(preemption) saves the current step and raises `Preempted` (`argenseg train` then exits
with status 75). A non-finite loss stops the run with the step number before anything is
saved, so the last checkpoint stays good.

Writes `DIR/metrics.jsonl`, TensorBoard events in `DIR/tensorboard/`, and at the end an
inference checkpoint `DIR/export/` (`argenseg segment --checkpoint DIR/export`);
`export_every=N` also writes one every N steps to `DIR/exports/step_N/` (for learning
curves: `argenseg eval` on each).
"""

import functools
import logging
import pathlib
import signal
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from argenseg_jax import config_args, distributed, sharding, user_input
from argenseg_jax.checkpoints import atomic
from argenseg_jax.example_spec import spec_for
from argenseg_jax.models import var_vqvae_io
from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.progress import Progress
from argenseg_jax.tokenizer import load_tokenizer, scratch_tokenizer
from argenseg_jax.training import optimizer, train_state, train_step
from argenseg_jax.training.checkpointing import Checkpointer
from argenseg_jax.training.metric_writer import MetricWriter


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or inf; the message names the step and the last checkpoint."""


class Preempted(Exception):
  """SIGTERM stopped the run early, after saving `step` in `directory`."""

  def __init__(self, step: int, num_steps: int, directory: pathlib.Path):
    super().__init__(f'stopped early by SIGTERM at step {step} of {num_steps}; saved step '
                     f'{step} in {directory}. Rerun the same command to resume.')
    self.step = step


def resolve_model(config: ml_collections.ConfigDict, workdir: pathlib.Path):
  """`(model config, pretrained model or None, tokenizer, tokenizer dir)` of a run:
  from `init_from` (our checkpoint or a Hugging Face-style one) or a config spec."""
  from argenseg_jax import pretrained  # pylint: disable=import-outside-toplevel
  if config.init_from:
    model, model_cfg = pretrained.load_pretrained(config.init_from)
    model_cfg.llm.remat = config.remat
    return model_cfg, model, load_tokenizer(config.init_from), config.init_from
  model_cfg = config_args.load_config(config.model)
  model_cfg.llm.remat = config.remat
  if not model_cfg.get('added_tokens'):
    raise ValueError(f'model {config.model!r} names no tokenizer to train from scratch '
                     '(variants tiny and small do): give such a config, or set init_from to '
                     'a checkpoint directory that holds its tokenizer.')
  tokenizer = scratch_tokenizer(model_cfg)
  if jax.process_index() == 0:
    tokenizer.save(workdir)
  return model_cfg, None, tokenizer, workdir


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

  `inputs(tokenizer, spec, batch_size)`: this process's grain dataset of padded batches
  (`data_pipelines.train_pipeline.training_inputs(config)`); its iterator's state is saved
  with every checkpoint."""
  from argenseg_jax import pretrained  # pylint: disable=import-outside-toplevel
  workdir = user_input.folder_path(pathlib.Path(workdir).absolute(), 'workdir')
  if config.export:
    atomic.check_target(workdir / 'export', pretrained.DIR_FORMAT)
  workdir.mkdir(parents=True, exist_ok=True)
  if config.distributed:
    distributed.initialize()
  model_cfg, pretrained_model, tokenizer, tokenizer_dir = resolve_model(config, workdir)
  mesh = mesh_of(config)
  tx = optimizer.make_optimizer(config.optimizer, config.num_steps)
  ctor = functools.partial(ARGenSeg, model_cfg)
  lay = train_state.layout(ctor, tx, mesh, config.frozen)

  procs = jax.process_count()
  rows = mesh.shape['data'] * mesh.shape['fsdp'] * config.accum_steps
  if config.batch_size % rows or config.batch_size % procs:
    raise ValueError(f'batch_size {config.batch_size} must be a multiple of data x fsdp x '
                     f'accum_steps = {rows} (mesh {dict(mesh.shape)}) and of the {procs} '
                     'processes; change batch_size or --config.mesh.')
  spec = spec_for(model_cfg, length_buckets=tuple(config.data.length_buckets),
                  max_masks=config.data.max_masks)
  data_iter = iter(inputs(tokenizer, spec, config.batch_size // procs))

  ckpt = Checkpointer(workdir / 'checkpoints', max_to_keep=config.checkpoint.keep,
                      async_save=config.checkpoint.async_save)
  meta = _meta_config(config, model_cfg)
  if ckpt.latest_step() is not None:
    state = ckpt.restore(lay.abstract, data_iter, meta)
    logging.info('resumed from step %d of %s', int(state.step), ckpt.directory)
  else:
    state = train_state.init_state(ctor, tx, lay, config.frozen, config.seed, pretrained_model)
    if config.image_tokenizer:
      state = train_state.with_image_tokenizer(
          state, lay, var_vqvae_io.load_vqvae(config.image_tokenizer, model_cfg.vqvae)[0])
  step_fn = train_step.make_train_step(
      lay, tx, mesh, schedule=optimizer.learning_rate(config.optimizer, config.num_steps),
      accum_steps=config.accum_steps, compute_dtype=jnp.dtype(config.compute_dtype),
      seed=config.seed)

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
      stopping = stop['requested']
      save = step % config.checkpoint.every == 0 or step == config.num_steps or stopping
      if save or step % config.log_every == 0:
        metrics = {k: float(v) for k, v in jax.device_get(device_metrics).items()}
        _check_finite(step, metrics, ckpt)
        seconds = (time.perf_counter() - t0) / (step - logged)  # per step since the last log
        metrics.update(step_time_s=seconds, tokens_per_s=metrics['tokens'] / seconds)
        writer.write(step, metrics)
        bar.update(step - bar.done, f'loss {metrics["loss"]:.4f} (text {metrics["text_loss"]:.3f}'
                                    f' gen {metrics["gen_loss"]:.3f})')
        logged, t0 = step, time.perf_counter()
      if save:
        ckpt.save(step, state, data_iter, meta)
      if config.export_every and step % config.export_every == 0 and jax.process_index() == 0:
        pretrained.save_pretrained(train_state.model_of(lay, state), model_cfg,
                                   workdir / 'exports' / f'step_{step}',
                                   tokenizer_dir=tokenizer_dir, overwrite=True)
      if stopping:
        break
  finally:
    bar.close()
    writer.close()
    ckpt.close()
  if step < config.num_steps:  # left the loop on SIGTERM
    raise Preempted(step, config.num_steps, ckpt.directory)
  if step == config.num_steps and config.export and jax.process_index() == 0:
    pretrained.save_pretrained(train_state.model_of(lay, state), model_cfg, workdir / 'export',
                               tokenizer_dir=tokenizer_dir)
  return metrics
