"""Two local CPU processes joined by `jax.distributed` train the tiny config together:
one global batch split between them, one checkpoint, the same loss on both; and the
data pipeline's per-process shards, simulated in one process."""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import numpy as np

from argenseg_jax import example_spec
from argenseg_jax.config_args import load_config
from argenseg_jax.ref_sample import RefSample
from argenseg_jax.tokenizer import scratch_tokenizer
from data_pipelines import train_pipeline

REPO = pathlib.Path(__file__).resolve().parent.parent


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_train_and_checkpoint(tmp_path):
  port = _free_port()
  procs = []
  for i in range(2):
    env = dict(os.environ, ARGENSEG_COORDINATOR=f'localhost:{port}', ARGENSEG_NUM_PROCESSES='2',
               ARGENSEG_PROCESS_ID=str(i), XLA_FLAGS='--xla_force_host_platform_device_count=2')
    procs.append(subprocess.Popen(
        [sys.executable, '-m', 'argenseg_jax.cli', 'train', '--config',
         f'{REPO}/configs/train_tiny.py:steps=2,samples=32', '--workdir', str(tmp_path),
         '--config.distributed=true', '--config.mesh.data=2', '--config.mesh.fsdp=2',
         '--config.export=false', '--config.checkpoint.every=2'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  outputs = [p.communicate(timeout=900)[0] for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  finals = [line for out in outputs for line in out.splitlines() if line.startswith('step 2:')]
  assert len(finals) == 2 and finals[0] == finals[1], finals  # one model, one loss
  rows = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in rows] == [1, 2]  # written by process 0 only
  meta = json.loads((tmp_path / 'checkpoints' / '2' / 'meta' / 'metadata').read_text())
  assert meta['process_count'] == 2

  # one process cannot continue a two-process run: refused with the reason
  single = subprocess.run(
      [sys.executable, '-m', 'argenseg_jax.cli', 'train', '--config',
       f'{REPO}/configs/train_tiny.py:steps=4,samples=32', '--workdir', str(tmp_path),
       '--config.export=false'],
      capture_output=True, text=True, env=dict(os.environ, XLA_FLAGS=''), check=False)
  assert single.returncode == 2
  assert 'written by 2 processes, this run has 1' in single.stderr


def test_process_shards_are_disjoint_and_cover_the_data():
  """Each of 3 processes reads its own samples of one epoch, the same largest-bucket
  length; together they read every sample once."""
  tok = scratch_tokenizer(load_config('argenseg:variant=tiny'))
  spec = example_spec.ExampleSpec(image_size=8, image_tokens=1, mask_resolution=8,
                                    mask_tokens=2, length_buckets=(256, 512), system_prompt='')
  image, mask = np.zeros((4, 4, 3), np.uint8), np.ones((4, 4), bool)
  source = [RefSample(image, [f'sample {i:02d}'], [mask], f'n:{i}') for i in range(10)]
  shards = []
  for index in range(3):
    cfg = train_pipeline.PipelineConfig(batch_size=1, seed=5, num_epochs=1,
                                        process_index=index, process_count=3)
    batches = list(train_pipeline.make_dataset(source, tok, spec, cfg))
    assert {b['ids'].shape for b in batches} == {(1, 512)}
    shards.append([int(re.search(r'sample (\d+)', tok.decode(b['ids'][0])).group(1))
                   for b in batches])
  assert sorted(map(len, shards)) == [3, 3, 4]
  assert sorted(sum(shards, [])) == list(range(10)), shards
