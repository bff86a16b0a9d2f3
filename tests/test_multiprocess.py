"""Two local CPU processes joined by `jax.distributed` train the tiny config together:
one global batch split between them, one checkpoint, the same loss on both."""

import json
import os
import pathlib
import socket
import subprocess
import sys

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
