"""Training on the tiny config: the loss falls, sharding does not change the step,
resume after SIGKILL is exact, SIGTERM saves, non-finite losses stop the run."""

import contextlib
import functools
import json
import multiprocessing
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache

from argenseg_jax import example_spec
from argenseg_jax.config_args import load_config
from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.sharding import make_mesh
from argenseg_jax.tokenizer import scratch_tokenizer
from argenseg_jax.training import checkpointing, optimizer, train_state, train_step, trainer
from data_pipelines import train_pipeline
from data_pipelines.synthetic_scenes import SyntheticScenes

REPO = pathlib.Path(__file__).resolve().parent.parent
TINY = str(REPO / 'configs' / 'train_tiny.py')


STEPS = 24  # one schedule everywhere, so every test reuses the same compiled programs


def _config(**overrides):
  """The tiny config on the 8 test devices (data 2 x fsdp 2 x tensor 2)."""
  config = load_config(f'{TINY}:steps={STEPS},samples=64')
  config.update({'export': False, **overrides})
  config.mesh.update(data=2, fsdp=2, tensor=2)
  return config


def _train(config, workdir) -> dict:
  return trainer.train(config, workdir, train_pipeline.training_inputs(config))


def logged_losses(workdir) -> dict[int, float]:
  """`{step: loss}` of a run's `metrics.jsonl`."""
  lines = (pathlib.Path(workdir) / 'metrics.jsonl').read_text().splitlines()
  return {r['step']: r['loss'] for r in map(json.loads, lines)}


def committed_steps(workdir) -> list[int]:
  root = pathlib.Path(workdir) / 'checkpoints'
  return sorted(int(p.name) for p in root.glob('*') if p.name.isdigit()) if root.is_dir() else []


def compile_cache_env(cache_dir) -> dict[str, str]:
  """The environment of subprocesses that share their compiled programs through JAX's
  persistent cache in `cache_dir`: only the first one compiles."""
  return dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache_dir),
              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')


@contextlib.contextmanager
def compile_cache(cache_dir):
  """This process shares its compiled programs in `cache_dir` too while inside."""
  before = (jax.config.jax_compilation_cache_dir,
            jax.config.jax_persistent_cache_min_compile_time_secs)
  jax.config.update('jax_compilation_cache_dir', str(cache_dir))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
  compilation_cache.reset_cache()
  try:
    yield
  finally:
    jax.config.update('jax_compilation_cache_dir', before[0])
    jax.config.update('jax_persistent_cache_min_compile_time_secs', before[1])
    compilation_cache.reset_cache()


def check_resume_after_sigkill(cmd: list[str], workdir, reference: dict[int, float],
                               steps: int, env: dict[str, str]) -> None:
  """Runs `cmd` (`argenseg train` into `workdir`) in `env`, SIGKILLs it once a checkpoint
  is committed, reruns it to the end and checks that every loss after the kill equals
  `reference`'s (`logged_losses` of the same config, never interrupted)."""
  proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
  while not committed_steps(workdir) and proc.poll() is None:
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  killed_at = max(committed_steps(workdir))
  assert killed_at < steps, 'the run finished before it could be killed'
  subprocess.run(cmd, check=True, capture_output=True, env=env)
  resumed = {s: l for s, l in logged_losses(workdir).items() if s > killed_at}
  assert sorted(resumed) == list(range(killed_at + 1, steps + 1))
  for s, loss in resumed.items():
    assert loss == pytest.approx(reference[s], rel=1e-6, abs=1e-6), s


@pytest.fixture(scope='module')
def xla_cache(tmp_path_factory):
  """Where `tiny_run` leaves its compiled programs for the `argenseg train` subprocesses."""
  return tmp_path_factory.mktemp('xla_cache')


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory, xla_cache):
  """The workdir of one uninterrupted in-process run of the tiny config, with export (and
  one every 12 steps), given as a relative path."""
  workdir = tmp_path_factory.mktemp('tiny_run')
  with pytest.MonkeyPatch.context() as patch, compile_cache(xla_cache):
    patch.chdir(workdir.parent)
    _train(_config(export=True, export_every=12), workdir.name)
  return workdir


def test_tiny_training_lowers_the_loss(tiny_run):
  losses = list(logged_losses(tiny_run).values())
  assert len(losses) == STEPS
  assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 1.0, losses
  assert committed_steps(tiny_run) == [20, 24]
  assert (tiny_run / 'export' / 'argenseg.json').is_file()
  exports = sorted((tiny_run / 'exports').iterdir())
  assert [p.name for p in exports] == ['step_12', 'step_24']
  assert all((p / 'argenseg.json').is_file() and (p / 'byte_tokenizer.json').is_file()
             for p in exports)
  assert list((tiny_run / 'tensorboard').glob('events.out.tfevents.*'))


def test_sharded_step_equals_unsharded():
  """The 8-device step (data 2, fsdp 2, tensor 2) and the 1-device step give the same
  loss and updated parameters from the same state and batch."""
  config = _config()
  cfg = load_config('argenseg:variant=tiny')
  spec = example_spec.spec_for(cfg, length_buckets=tuple(config.data.length_buckets))
  batch = next(iter(train_pipeline.make_dataset(
      SyntheticScenes(16, seed=3, size=64), scratch_tokenizer(cfg), spec,
      train_pipeline.PipelineConfig(config.batch_size))))
  tx = optimizer.make_optimizer(config.optimizer, STEPS)
  ctor = functools.partial(ARGenSeg, cfg)
  initial = None
  results = []
  for mesh in (make_mesh(2, 2, 2), make_mesh(devices=jax.devices()[:1])):
    lay = train_state.layout(ctor, tx, mesh)
    if initial is None:
      state = train_state.init_state(ctor, tx, lay)
      initial = jax.device_get(state)
    else:
      state = jax.device_put(initial, lay.shardings)
    step = train_step.make_train_step(lay, tx, mesh,
                                      schedule=optimizer.learning_rate(config.optimizer, STEPS))
    state, metrics = step(state, train_step.global_batch(batch, mesh))
    results.append((float(metrics['loss']), jax.device_get(state.params)))
    if len(results) == 1:
      assert any(len(x.sharding.device_set) > 1 for x in jax.tree.leaves(state.params))
  (loss8, params8), (loss1, params1) = results
  assert abs(loss1 - loss8) <= 1e-5 * abs(loss1)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
               params1, params8)


def _train_cmd(workdir):
  return [sys.executable, '-m', 'argenseg_jax.cli', 'train', '--config',
          f'{TINY}:steps={STEPS},samples=64', '--workdir', str(workdir),
          '--config.checkpoint.every=4', '--config.export=false', '--config.mesh.data=2',
          '--config.mesh.fsdp=2', '--config.mesh.tensor=2']


def test_resume_after_sigkill_is_exact(tmp_path, tiny_run, xla_cache):
  run = tmp_path / 'run'
  check_resume_after_sigkill(_train_cmd(run), run, logged_losses(tiny_run), STEPS,
                             compile_cache_env(xla_cache))


def test_sigterm_saves_and_stops(tmp_path, monkeypatch):
  write = trainer.MetricWriter.write
  workers = []

  def write_then_term(self, step, values):  # a preemption notice to the process group
    write(self, step, values)
    if step == 2:
      workers.extend(multiprocessing.active_children())
      for proc in [*workers, multiprocessing.current_process()]:
        os.kill(proc.pid, signal.SIGTERM)
      time.sleep(0.5)
      assert workers and all(w.is_alive() for w in workers), 'a data worker died of SIGTERM'
  monkeypatch.setattr(trainer.MetricWriter, 'write', write_then_term)
  config = _config()
  config.data.workers = 1
  with pytest.raises(trainer.Preempted, match=re.escape(
      f'stopped early by SIGTERM at step 3 of {STEPS}; saved step 3 in {tmp_path}/checkpoints')):
    _train(config, tmp_path)
  assert committed_steps(tmp_path) == [3]
  # a step damaged after the save is named when the run resumes, in one line
  state = tmp_path / 'checkpoints' / '3' / 'state'
  largest = max((f for f in state.rglob('*') if f.is_file()), key=lambda f: f.stat().st_size)
  largest.write_bytes(largest.read_bytes()[:largest.stat().st_size // 2])
  with pytest.raises(checkpointing.ResumeError, match=re.escape(
      f'{tmp_path}/checkpoints/3 cannot be read (truncated or damaged?)')):
    _train(config, tmp_path)


def test_non_finite_loss_stops_with_the_step(tmp_path, monkeypatch):
  make = train_step.make_train_step

  def nan_from_step_3(*args, **kwargs):
    step = make(*args, **kwargs)

    def run(state, batch):
      state, metrics = step(state, batch)
      return state, dict(metrics, loss=jax.numpy.where(state.step >= 3, np.nan, metrics['loss']))
    return run
  monkeypatch.setattr(train_step, 'make_train_step', nan_from_step_3)
  config = _config()
  config.checkpoint.every = 2
  with pytest.raises(trainer.NonFiniteLossError,
                     match='at step 3; the last good checkpoint is step 2'):
    _train(config, tmp_path)
  assert committed_steps(tmp_path) == [2]
