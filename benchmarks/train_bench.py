"""Input pipeline vs train step throughput, so it is visible that input is never the
bottleneck.

  python benchmarks/train_bench.py            # 448-px pipeline with 2 workers, tiny step
  python benchmarks/train_bench.py --meta argenseg_jax/assets/mixture_tiny/meta.json \
      --meta-root argenseg_jax/assets/mixture_tiny       # a meta file's mixture instead

1. The data pipeline alone (grain chain: samples -> InternVL tile, masks -> bicubic 512 ->
   VQ-VAE inputs, template, labels, padding) with `--workers` processes, for the real
   model's inputs (448-px tiles, 256-px masks) and the tiny config's (64-px): examples/s.
   The samples are synthetic scenes, or with `--meta` the mixture of a meta file
   (`data_pipelines/mixture.py`: every source, panoptic classes drawn, understanding and
   text-only rows, up to `--max-masks` masks per answer).
2. The tiny config's jitted train step on one CPU device, fed by the same source:
   examples/s and step time. The ratio compares like with like (64-px inputs).
"""

import functools
import time

import jax
from timing import parse_args

from argenseg_jax import example_spec
from argenseg_jax.config_args import load_config
from argenseg_jax.models.argenseg import ARGenSeg
from argenseg_jax.sharding import make_mesh
from argenseg_jax.tokenizer import scratch_tokenizer
from argenseg_jax.training import optimizer, train_state, train_step
from data_pipelines import train_pipeline
from data_pipelines.mixture import Mixture
from data_pipelines.synthetic_scenes import SyntheticScenes


def make_source(args, image_size: int, n: int):
  """The meta file's mixture, or `n` synthetic scenes of `image_size` px."""
  if args.meta:
    return Mixture(args.meta, args.meta_root)
  return SyntheticScenes(n, seed=0, size=image_size)


def pipeline_rate(model_cfg, source, batch: int, workers: int, batches: int,
                  max_masks: int) -> float:
  """Examples/s of the training chain over `source` (first batch excluded)."""
  tok = scratch_tokenizer(load_config('argenseg:variant=tiny'))
  spec = example_spec.spec_for(model_cfg, length_buckets=(1024, 2048), max_masks=max_masks)
  ds = train_pipeline.make_dataset(
      source, tok, spec, train_pipeline.PipelineConfig(batch_size=batch, worker_count=workers))
  it = iter(ds)
  next(it)
  t0 = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batch * batches / (time.perf_counter() - t0)


def step_rate(source, batch: int, steps: int, max_masks: int) -> tuple[float, float]:
  """(examples/s, seconds per step) of the tiny train step on `source`, compile excluded."""
  config = load_config('train_tiny')
  cfg = load_config(config.model)
  tok = scratch_tokenizer(cfg)
  spec = example_spec.spec_for(cfg, length_buckets=tuple(config.data.length_buckets),
                               max_masks=max_masks)
  it = iter(train_pipeline.make_dataset(source, tok, spec,
                                        train_pipeline.PipelineConfig(batch_size=batch)))
  mesh = make_mesh(devices=jax.devices()[:1])
  tx = optimizer.make_optimizer(config.optimizer, 1000)
  ctor = functools.partial(ARGenSeg, cfg)
  lay = train_state.layout(ctor, tx, mesh)
  state = train_state.init_state(ctor, tx, lay)
  step = train_step.make_train_step(lay, tx, mesh,
                                    schedule=optimizer.learning_rate(config.optimizer, 1000))
  batches = [train_step.global_batch(next(it), mesh) for _ in range(steps + 1)]
  state, metrics = step(state, batches[0])
  jax.block_until_ready(metrics)
  t0 = time.perf_counter()
  for b in batches[1:]:
    state, metrics = step(state, b)
  jax.block_until_ready(metrics)
  seconds = (time.perf_counter() - t0) / steps
  return batch / seconds, seconds


def main():
  args = parse_args(__doc__, 'argenseg:variant=8b', workers=2, steps=20, batches=8, meta='',
                    meta_root='', max_masks=2)
  batch = args.batch[0] if args.batch != [1, 8] else 4
  data = f'the mixture of {args.meta}' if args.meta else 'synthetic scenes'
  for name, cfg, size in ((args.config, load_config(args.config), 448),
                          ('tiny', load_config('argenseg:variant=tiny'), 64)):
    rate = pipeline_rate(cfg, make_source(args, size, 100_000), batch, args.workers,
                         args.batches, args.max_masks)
    tile = cfg.image.vision.image_size
    print(f'data pipeline ({name}: {data}, {tile}-px tiles, {cfg.vqvae.resolution}-px '
          f'masks), {args.workers} workers, batch {batch}: {rate:.1f} examples/s')
  ex_per_s, seconds = step_rate(make_source(args, 64, 1000), batch, args.steps, args.max_masks)
  print(f'tiny train step on {jax.devices()[0].device_kind}, batch {batch}: '
        f'{ex_per_s:.1f} examples/s ({seconds * 1000:.0f} ms/step)')
  print(f'tiny pipeline / tiny step = {rate / ex_per_s:.1f}x (> 1: the step, not the '
        'input, is the bottleneck)')


if __name__ == '__main__':
  main()
