"""Load test of `argenseg serve` on localhost: requests/s and latency with and without
cross-client batching, and a check that no request is lost or mixed up.

  python benchmarks/serve_bench.py [--clients 8] [--seconds 20] [--batch-sizes 1,2,4,8]
                                   [--window-ms 10]

Two servers on the bundled model, one after the other: `--batch-sizes 1` (every request
runs alone: no cross-client batching) and `--batch-sizes` (requests of several clients
share a batch). N clients post in a closed loop for T seconds (each waits for its reply,
then posts again), cycling through 8 images (the bundled scene flipped and shifted:
8 different masks) with the scene's expression. Before the load, each image is asked
alone; a reply under load must hold that answer bit for bit (else it counts as mixed
up), and a request without a 200 reply counts as lost. Clients and server share the
machine's cores.
"""

import argparse
import concurrent.futures
import io
import statistics
import tempfile
import time

import numpy as np
from PIL import Image

from argenseg_jax import bundled
from argenseg_jax.serve.client import ServerProcess, post_segment


def images() -> list[bytes]:
  """8 PNGs of the bundled scene: flipped 4 ways, each as it is and shifted."""
  scene = np.asarray(Image.open(bundled.SCENE).convert('RGB'))
  out = []
  for base in (scene, np.roll(scene, (12, -20), axis=(0, 1))):
    for flipped in (base, base[:, ::-1], base[::-1], base[::-1, ::-1]):
      buffer = io.BytesIO()
      Image.fromarray(np.ascontiguousarray(flipped)).save(buffer, format='PNG')
      out.append(buffer.getvalue())
  return out


def ask(url: str, image: bytes) -> tuple[int, dict]:
  status, _, reply = post_segment(url, image, expression=bundled.SCENE_EXPRESSION)
  return status, reply


def load(url: str, pngs: list[bytes], answers: list[dict], clients: int, seconds: float) -> dict:
  """N closed-loop clients for `seconds`: their latencies, losses, mix-ups, batch rows."""
  start = time.perf_counter()
  stop = start + seconds

  def client(k: int) -> dict:
    seen = {'latency': [], 'lost': 0, 'mixed': 0, 'rows': []}
    i = k
    while time.perf_counter() < stop:
      t0 = time.perf_counter()
      status, reply = ask(url, pngs[i % len(pngs)])
      seen['latency'].append(time.perf_counter() - t0)
      if status != 200:
        seen['lost'] += 1
      else:
        expected = answers[i % len(pngs)]
        seen['mixed'] += (reply['text'], reply['mask_png']) != (expected['text'],
                                                                expected['mask_png'])
        seen['rows'].append(reply['batch']['rows'])
      i += 1
    return seen

  with concurrent.futures.ThreadPoolExecutor(clients) as pool:
    parts = list(pool.map(client, range(clients)))
  elapsed = time.perf_counter() - start
  latency = sorted(t for p in parts for t in p['latency'])
  rows = [r for p in parts for r in p['rows']]
  return {'requests': len(latency), 'per_s': len(latency) / elapsed,
          'p50': statistics.median(latency), 'p95': latency[int(0.95 * (len(latency) - 1))],
          'rows': statistics.mean(rows), 'lost': sum(p['lost'] for p in parts),
          'mixed': sum(p['mixed'] for p in parts)}


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--clients', type=int, default=8)
  parser.add_argument('--seconds', type=float, default=20)
  parser.add_argument('--batch-sizes', default='1,2,4,8')
  parser.add_argument('--window-ms', default='10')
  args = parser.parse_args()
  pngs = images()
  print(f'{args.clients} clients, {args.seconds:g} s each run, {len(pngs)} images, bundled '
        'model; one row per server')
  print('| batching | batch sizes | window | requests | requests/s | p50 s | p95 s | '
        'batch rows (mean over requests) | lost | mixed up |')
  print('|---|---|---|---|---|---|---|---|---|---|')
  for label, sizes in (('off', '1'), ('on', args.batch_sizes)):
    with tempfile.TemporaryDirectory() as folder, ServerProcess(
        ['--batch-sizes', sizes, '--window-ms', args.window_ms, '--queue',
         str(max(32, args.clients))], f'{folder}/server.log') as server:
      answers = []
      for png in pngs:
        status, reply = ask(server.url, png)
        assert status == 200, reply
        answers.append(reply)
      r = load(server.url, pngs, answers, args.clients, args.seconds)
    print(f'| {label} | {sizes} | {args.window_ms} ms | {r["requests"]} | {r["per_s"]:.2f} | '
          f'{r["p50"]:.3f} | {r["p95"]:.3f} | {r["rows"]:.2f} | {r["lost"]} | {r["mixed"]} |',
          flush=True)


if __name__ == '__main__':
  main()
