"""A learning curve: every `WORKDIR/exports/step_N` of a run (`export_every=N`) checked
on held-out data, so recipes are compared by examples seen.

  argenseg train --config configs/train_bundled.py:export_every=300 --workdir /tmp/run
  python benchmarks/learning_curve.py /tmp/run --data synthetic:seed=1,n=200,size=128

Per export: the teacher-forced visual-token loss with the right images and expressions,
swapped images and shuffled expressions (`argenseg_jax.evaluation.grounding`, first
`--grounding-samples` samples), and `argenseg eval`'s cIoU, gIoU, N-acc and T-acc on the
data. Prints one markdown row per export; examples seen = step x `--run-batch-size`.
"""

import argparse
import tempfile

from etils import epath

from argenseg_jax import user_input
from argenseg_jax.cli import evaluate
from argenseg_jax.evaluation import evaluator, grounding
from argenseg_jax.sampler import SamplerConfig
from argenseg_jax.segmenter import Segmenter
from data_pipelines import data_spec


def exports(workdir: epath.Path) -> list[tuple[int, epath.Path]]:
  """`(step, directory)` of the run's exports, by step."""
  found = [(int(p.name.removeprefix('step_')), p) for p in (workdir / 'exports').glob('step_*')]
  if not found:
    raise SystemExit(f'{workdir}/exports holds no step_N: train with export_every=N.')
  return sorted(found)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('workdir', type=user_input.path, help='the run (local or gs://...)')
  parser.add_argument('--data', default='synthetic:seed=1,n=200,size=128')
  parser.add_argument('--grounding-samples', type=int, default=32)
  parser.add_argument('--batch-size', type=int, default=8, help='questions per model call')
  parser.add_argument('--run-batch-size', type=int, default=16, help="the run's batch size")
  args = parser.parse_args()
  source = data_spec.open_source(args.data)
  print('| step | examples | visual loss right / swapped image / shuffled words | cIoU | gIoU '
        '| N-acc | T-acc |\n|---|---|---|---|---|---|---|')
  for step, path in exports(args.workdir):
    dep = grounding.image_dependence(*evaluate.load_batches(str(path), args.data,
                                                            args.grounding_samples))
    seg = Segmenter.load(path, batch_size=args.batch_size,
                         sampler_config=SamplerConfig(max_new_tokens=64))
    with tempfile.TemporaryDirectory() as out:
      m = evaluator.evaluate(seg, source, batch_size=args.batch_size, out_dir=out,
                             num_overlays=0, progress=False)['metrics']
    print(f'| {step} | {step * args.run_batch_size} | {dep.loss_own:.3f} / '
          f'{dep.loss_swapped:.3f} / '
          f'{dep.loss_shuffled:.3f} | {m["cIoU"]:.3f} | {m["gIoU"]:.3f} | {m["N-acc"]:.3f} '
          f'| {m["T-acc"]:.3f} |', flush=True)


if __name__ == '__main__':
  main()
