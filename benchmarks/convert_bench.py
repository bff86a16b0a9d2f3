"""Peak host RAM of `convert_pretrained` (streaming) against the old whole-state-dict path.

  python benchmarks/convert_bench.py [--vocab 131072] [--shards 4] [--workdir DIR]

Builds a synthetic Hugging Face-style checkpoint (`argenseg:variant=mid`, real VQ-VAE,
bfloat16 as released) whose vocabulary is raised to --vocab, so that `tok_embeddings`
and `output` are the largest tensors. Each step then runs in a fresh child process that
reports its own peak RSS (`VmHWM` of /proc/self/status at its end: the high-water mark
since its exec, anonymous and file-backed pages; `ru_maxrss` would also count the pages
the child shared with this parent before exec):

  baseline  python + `import argenseg_jax.pretrained` (jax, flax, orbax, tensorstore,
            safetensors) with the jax CPU backend started, converting nothing
  stream    convert_pretrained(hf, out)
  old       save_pretrained(*load_pretrained(hf), out, tokenizer_dir=hf): what
            convert_pretrained did before (whole state dict and model in RAM)

ratio = (stream peak - baseline peak) / largest tensor bytes; the target is <= 1.5.
On the 2-core CPU build machine (defaults: 424 tensors, 0.89 GiB, largest 256 MiB,
about 2 minutes, < 2 GB of disk): baseline 202 MiB, stream 510 MiB (ratio 1.20, 8
orbax groups), old 2200 MiB (ratio 7.8).
"""

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import ml_dtypes

from argenseg_jax.checkpoints import hf_dir, synthetic
from argenseg_jax.config_args import load_config


def mid_config(vocab: int):
  """`argenseg:variant=mid` with `vocab` rows in the embedding and output head (the
  special and visual token ids move up with it)."""
  cfg = load_config('argenseg:variant=mid')
  shift = vocab - cfg.llm.vocab_size
  cfg.llm.vocab_size = vocab
  cfg.img_context_token_id += shift
  for k in cfg.tokens:
    cfg.tokens[k] += shift
  return cfg


def child(mode: str, src: str, dst: str) -> None:
  """Runs one step and prints this process's peak RSS in bytes as the last line."""
  import jax  # pylint: disable=import-outside-toplevel

  from argenseg_jax import pretrained  # pylint: disable=import-outside-toplevel
  jax.devices()
  if mode == 'stream':
    pretrained.convert_pretrained(src, dst)
  elif mode == 'old':
    pretrained.save_pretrained(*pretrained.load_pretrained(src), dst, tokenizer_dir=src)
  status = pathlib.Path('/proc/self/status').read_text()
  (hwm,) = [line.split()[1] for line in status.splitlines() if line.startswith('VmHWM:')]
  print(int(hwm) * 1024)


def run_child(mode: str, src: pathlib.Path, dst: pathlib.Path) -> tuple[int, float]:
  """`(peak RSS in bytes, seconds)` of one child process."""
  t0 = time.perf_counter()
  out = subprocess.run([sys.executable, __file__, '--child', mode, str(src), str(dst)],
                       stdout=subprocess.PIPE, text=True, check=True).stdout
  return int(out.split()[-1]), time.perf_counter() - t0


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--vocab', type=int, default=131072)
  parser.add_argument('--shards', type=int, default=4)
  parser.add_argument('--workdir', help='scratch folder (default: a temporary one)')
  parser.add_argument('--child', nargs=3, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    child(*args.child)
    return
  work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix='convert_bench.'))
  try:
    t0 = time.perf_counter()
    hf = synthetic.write_hf_dir(mid_config(args.vocab), work / 'hf', shards=args.shards,
                                dtype=ml_dtypes.bfloat16)
    weights = hf_dir.open_weights(hf)
    total = sum(t.nbytes for t in weights.values())
    largest = max(weights.values(), key=lambda t: t.nbytes)
    print(f'checkpoint: {len(weights)} tensors, {total / 2**30:.2f} GiB bfloat16 in '
          f'{args.shards} shards (built in {time.perf_counter() - t0:.0f}s)')
    print(f'largest tensor: {largest.key} {largest.shape} = {largest.nbytes / 2**20:.0f} MiB')
    base, _ = run_child('baseline', hf, work / 'none')
    print(f'baseline RSS (imports + jax CPU backend, idle): {base / 2**20:.0f} MiB')
    peaks = {}
    for mode in ('stream', 'old'):
      peaks[mode], seconds = run_child(mode, hf, work / mode)
      groups = len(list((work / mode / 'params').glob('ocdbt.process_*')))
      print(f'{mode:6} peak RSS {peaks[mode] / 2**20:6.0f} MiB  ({seconds:.0f}s, '
            f'{groups} orbax write group(s))')
      shutil.rmtree(work / mode)
    for mode, peak in peaks.items():
      print(f'{mode:6} raw peak / largest = {peak / largest.nbytes:.2f}   '
            f'ratio (peak - baseline) / largest = {(peak - base) / largest.nbytes:.2f}')
  finally:
    if not args.workdir:
      shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
  main()
