"""Helpers shared by the benchmark scripts: arguments, model setup, timing."""

import argparse
import statistics
import time

import jax
from absl import flags
from flax import nnx

from argenseg_jax.checkpoints import params
from argenseg_jax.config_args import load_config


def parse_args(doc: str, default_config: str, **options: int | str) -> argparse.Namespace:
  """`--config`, `--batch 1,8` (parsed to a list of ints), `--reps`, and one option per
  keyword, of its default's type (`prompt=300` -> `--prompt`, `meta_root=''` ->
  `--meta-root`)."""
  flags.FLAGS.mark_as_parsed()
  parser = argparse.ArgumentParser(description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--config', default=default_config)
  parser.add_argument('--batch', default='1,8')
  parser.add_argument('--reps', type=int, default=3)
  for name, default in options.items():
    parser.add_argument(f'--{name.replace("_", "-")}', type=type(default), default=default)
  args = parser.parse_args()
  args.batch = [int(v) for v in args.batch.split(',')]
  return args


def random_model(config: str, init_fn):
  """`(cfg, graphdef, state)` of `init_fn(cfg)`, with a one-line description printed."""
  cfg = load_config(config)
  t0 = time.perf_counter()
  model = init_fn(cfg)
  graphdef, state = nnx.split(model)
  jax.block_until_ready(state)
  print(f'{config}: {params.count(model) / 1e6:.1f} M parameters, random init '
        f'{time.perf_counter() - t0:.1f}s; {jax.device_count()} x '
        f'{jax.devices()[0].device_kind}, float32')
  return cfg, graphdef, state


def time_call(fn, *args, reps: int = 3) -> tuple[float, float]:
  """(seconds of the first call, compile included; median seconds of `reps` more)."""
  t0 = time.perf_counter()
  jax.block_until_ready(fn(*args))
  first = time.perf_counter() - t0
  runs = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    runs.append(time.perf_counter() - t0)
  return first, statistics.median(runs)
