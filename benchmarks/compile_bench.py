"""Compile time of the ARGenSeg-8B programs, layers scanned vs unrolled, on fake devices.

  python benchmarks/compile_bench.py                 # 8B, 8 fake CPU devices
  python benchmarks/compile_bench.py --config argenseg:variant=small --programs train

Nothing is materialised: every input is a `ShapeDtypeStruct`, and each program goes
through `jax.jit(...).lower(...).compile()` on `--devices` fake CPU devices
(`--xla_force_host_platform_device_count`). Programs:
  train    the 8B recipe's train step (`configs/train_argenseg8b.py`: bf16 compute on f32
           master weights, remat, frozen ViT and VQ-VAE, AdamW) on the mesh `--mesh`,
           `--batch` samples of `--seq-len` tokens with one 448-px tile and one mask each;
  sampler  the next-scale sampler (`sampler.generate`: prefill, text steps, the 10 scale
           passes) in bf16 on one device, batch 1, a `--prompt`-token prompt.
Each is compiled with `scan_layers` on (one `lax.scan` over each layer stack) and off
(the same stacked parameters, the layers unrolled in Python), side by side in one run.
"""

import argparse
import json
import os
import sys
import time


def _devices(argv) -> int:
  parser = argparse.ArgumentParser(add_help=False)
  parser.add_argument('--devices', type=int, default=8)
  return parser.parse_known_args(argv)[0].devices


if __name__ == '__main__':  # before jax is imported: the fake devices
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_'
                             f'device_count={_devices(sys.argv[1:])}')
  os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import functools  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from argenseg_jax import config_args, sampler, sharding  # noqa: E402
from argenseg_jax.checkpoints import params  # noqa: E402
from argenseg_jax.models.argenseg import ARGenSeg  # noqa: E402
from argenseg_jax.training import optimizer, train_state, train_step  # noqa: E402
from argenseg_jax.training.defaults import base_config  # noqa: E402


def model_config(spec: str, scan: bool, remat):
  cfg = config_args.load_config(spec)
  cfg.llm.scan_layers = cfg.image.vision.scan_layers = scan
  cfg.llm.remat = remat
  return cfg


def train_program(cfg, mesh, batch: int, seq_len: int):
  """`(lowering function, its abstract arguments)` of the 8B recipe's train step."""
  train = base_config()
  tx = optimizer.make_optimizer(train.optimizer, 1000)
  ctor = functools.partial(ARGenSeg, cfg)
  lay = train_state.layout(ctor, tx, mesh, train.frozen)
  step = train_step.make_train_step(
      lay, tx, mesh, schedule=optimizer.learning_rate(train.optimizer, 1000),
      compute_dtype=jnp.bfloat16)
  res, tile = cfg.vqvae.resolution, cfg.image.vision.image_size
  shapes = dict(ids=((batch, seq_len), jnp.int32), labels=((batch, seq_len), jnp.int32),
                token_mask=((batch, seq_len), bool),
                pixels=((batch, tile, tile, 3), jnp.float32), image_flags=((batch,), jnp.int32),
                masks=((batch, res, res, 3), jnp.float32), mask_flags=((batch,), jnp.int32))
  sh = train_step.batch_sharding(mesh)
  batch_abstract = {k: jax.ShapeDtypeStruct(s, d, sharding=sh) for k, (s, d) in shapes.items()}
  return step.lower, (lay.abstract, batch_abstract)


def sampler_program(cfg, prompt: int):
  """`(lowering function, its abstract arguments)` of `sampler.generate`, bf16, batch 1."""
  model = params.abstract(functools.partial(ARGenSeg, cfg))
  graphdef, state = nnx.split(model)
  state = jax.tree.map(lambda a: jax.ShapeDtypeStruct(
      a.shape, jnp.bfloat16 if jnp.issubdtype(a.dtype, jnp.floating) else a.dtype), state)
  config = sampler.SamplerConfig(max_new_tokens=32)
  tile = cfg.image.vision.image_size
  fn = jax.jit(lambda s, ids, mask, pixels, flags: sampler.generate(
      nnx.merge(graphdef, s), ids, mask, pixels, flags, config, jax.random.key(0)))
  args = (state, jax.ShapeDtypeStruct((1, prompt), jnp.int32),
          jax.ShapeDtypeStruct((1, prompt), bool),
          jax.ShapeDtypeStruct((1, tile, tile, 3), jnp.bfloat16),
          jax.ShapeDtypeStruct((1,), jnp.int32))
  return fn.lower, args


def compile_seconds(lower, args) -> dict[str, float]:
  t0 = time.perf_counter()
  lowered = lower(*args)
  t1 = time.perf_counter()
  lowered.compile()
  t2 = time.perf_counter()
  return {'lower_s': t1 - t0, 'compile_s': t2 - t1, 'total_s': t2 - t0}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--config', default='argenseg:variant=8b')
  parser.add_argument('--devices', type=int, default=8, help='fake CPU devices')
  parser.add_argument('--mesh', default='data=1,fsdp=8,tensor=1')
  parser.add_argument('--batch', type=int, default=8, help='train samples per step')
  parser.add_argument('--seq-len', type=int, default=4096)
  parser.add_argument('--prompt', type=int, default=320, help='sampler prompt tokens')
  parser.add_argument('--programs', default='train,sampler')
  parser.add_argument('--modes', default='scanned,unrolled')
  parser.add_argument('--json', help='also write the figures here')
  args = parser.parse_args(argv)
  sizes = sharding.parse_mesh(args.mesh)
  mesh = sharding.make_mesh(**sizes, devices=jax.devices()[:np.prod(list(sizes.values()))])
  print(f'{args.config}: {jax.device_count()} x {jax.devices()[0].device_kind}, mesh '
        f'{dict(mesh.shape)}; abstract inputs (nothing allocated)')
  rows = []
  for program in args.programs.split(','):
    for mode in args.modes.split(','):
      scan = mode == 'scanned'
      if program == 'train':
        lower, inputs = train_program(model_config(args.config, scan, True), mesh,
                                      args.batch, args.seq_len)
      else:
        lower, inputs = sampler_program(model_config(args.config, scan, False), args.prompt)
      figures = compile_seconds(lower, inputs)
      rows.append(dict(program=program, mode=mode, **figures))
      print(f'  {program:8s} {mode:9s} lower {figures["lower_s"]:7.1f} s   compile '
            f'{figures["compile_s"]:7.1f} s   total {figures["total_s"]:7.1f} s', flush=True)
  for program in args.programs.split(','):
    by_mode = {r['mode']: r['total_s'] for r in rows if r['program'] == program}
    if {'scanned', 'unrolled'} <= set(by_mode):
      print(f'  {program}: unrolled / scanned = {by_mode["unrolled"] / by_mode["scanned"]:.1f}x')
  if args.json:
    with open(args.json, 'w', encoding='utf-8') as f:
      json.dump({'config': args.config, 'mesh': dict(mesh.shape), 'rows': rows}, f, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
