"""`benchmarks/accelerator.py --small`: every figure in the JSON, positive and finite, and
the table printed; an existing `--json` is refused before any compute."""

import json
import math
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / 'benchmarks' / 'accelerator.py'
NOT_ON_CPU = {'mfu', 'masks_per_s_at_peak', 'peak_bytes', 'peak_flops'}  # null: n/a
ANY_SIGN = {'rest'}  # end to end minus the parts measured on their own
FIGURES = {  # JSON path -> keys that must be there
    ('inference',): ('parameters', 'prompt_tokens', 'answer_tokens', 'compile_init',
                     'peak_bytes'),
    ('train',): ('step_seconds', 'tokens_per_s', 'mfu', 'compile', 'plan_flops', 'plan_bytes',
                 'peak_bytes', 'batch', 'seq_len', 'loss'),
    ('inference', 'batches', '1', 'raster'): ('mask_passes', 'seconds_per_mask',
                                              'ratio_end_to_end', 'ratio_mask_passes',
                                              'compile'),
    ('inference', 'batches', '2', 'split'): ('vqvae_decode_batched',),
    ('inference', 'batches', '2', 'compile'): ('vqvae_decode_batched',),
}
PER_BATCH = {(): ('seconds_per_call', 'seconds_per_mask', 'masks_per_s', 'plan_flops', 'mfu',
                  'masks_per_s_at_peak'),
             ('split',): ('prefill', 'scale_passes', 'text_decode', 'vqvae_decode', 'rest'),
             ('compile',): ('end_to_end', 'prefill', 'scale_passes', 'text_decode')}


def run_script(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
  """The script in a fresh process, on one CPU device and without the tests' shared
  compilation cache (its programs are its own)."""
  env = {k: v for k, v in os.environ.items()
         if k not in ('JAX_COMPILATION_CACHE_DIR', 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS')}
  env['XLA_FLAGS'] = ' '.join(f for f in env.get('XLA_FLAGS', '').split()
                              if not f.startswith('--xla_force_host_platform_device_count'))
  return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=900, check=False)


def leaves(tree, path=()):
  """`(path, value)` of every number or null in the JSON tree."""
  if isinstance(tree, dict):
    for k, v in tree.items():
      yield from leaves(v, path + (k,))
  elif tree is None or isinstance(tree, (int, float)) and not isinstance(tree, bool):
    yield path, tree


def test_small_run_writes_every_figure(tmp_path):
  out = tmp_path / 'figures.json'
  proc = run_script('--small', '--json', str(out), cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-4000:]
  result = json.loads(out.read_text())
  assert result['small'] is True and 'goals' not in result
  assert sorted(result['inference']['batches']) == ['1', '2']
  wanted = dict(FIGURES)
  for b in result['inference']['batches']:
    wanted.update({('inference', 'batches', b) + part: keys for part, keys in PER_BATCH.items()})
  for path, keys in wanted.items():
    node = result
    for k in path:
      node = node[k]
    assert set(keys) <= set(node), (path, sorted(set(keys) - set(node)))
  for path, value in leaves(result):
    if value is None:
      assert path[-1] in NOT_ON_CPU, path
    else:
      assert math.isfinite(value), path
      assert value > 0 or path[-1] in ANY_SIGN, (path, value)
  for line in ('seconds per mask, batch 1 / 2', 'masks/s, batch 1 / 2', 'the scale passes',
               'raster / next-scale: mask passes', 'train: tokens/s', 'train: MFU'):
    assert line in proc.stdout, line


def test_existing_output_is_refused_before_any_compute(tmp_path):
  out = tmp_path / 'figures.json'
  out.write_text('{"kept": true}')
  proc = run_script('--small', '--json', str(out), cwd=tmp_path)
  assert proc.returncode == 2
  assert proc.stdout == ''
  [line] = proc.stderr.strip().splitlines()
  assert 'exists' in line and '--overwrite' in line
  assert out.read_text() == '{"kept": true}'
