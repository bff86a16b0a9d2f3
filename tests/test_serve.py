"""`argenseg serve`: the batcher on its own, then the real server (uvicorn on 127.0.0.1,
the bundled model) over HTTP: a good request, each bad input, a timeout, a full queue,
and concurrent requests that equal their single answers bit for bit."""

import asyncio
import concurrent.futures
import io
import json
import os
import socket
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from argenseg_jax import bundled
from argenseg_jax.serve.batcher import Batcher, QueueFull
from argenseg_jax.serve.client import ServerProcess, encode_form, png_array, post, post_segment

SERVER_ARGS = ['--batch-sizes', '1,4', '--window-ms', '300', '--queue', '4', '--max-mb', '1',
               '--max-pixels', str(200 * 200), '--max-text', '60', '--timeout', '30']


def _batches(submissions, **batcher_args):
  """Runs `submissions(batcher)` on a batcher whose model multiplies by 10; returns
  (its result, the batches the model saw)."""
  seen = []

  def run(queries):
    seen.append(list(queries))
    return [q * 10 for q in queries]

  async def main():
    batcher = Batcher(run, **batcher_args)
    await batcher.start()
    try:
      return await submissions(batcher), seen
    finally:
      await batcher.stop()

  return asyncio.run(main())


def test_batches_group_one_key_up_to_the_largest_size_and_answer_in_order():
  async def submit(batcher):
    keys = ['a', 'b', 'a', 'a', 'b']
    return await asyncio.gather(*(batcher.submit(q, k, 5) for q, k in enumerate(keys)))

  answers, seen = _batches(submit, max_batch=2, window_s=0.05, capacity=8)
  assert answers == [0, 10, 20, 30, 40]
  assert seen == [[0, 2], [1, 4], [3]]


def test_a_full_queue_refuses_and_a_timed_out_request_leaves_it():
  async def submit(batcher):
    first = asyncio.ensure_future(batcher.submit(1, 'a', 5))
    second = asyncio.ensure_future(batcher.submit(2, 'a', 0.05))
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):
      await batcher.submit(3, 'a', 5)
    with pytest.raises(asyncio.TimeoutError):
      await second
    return await asyncio.gather(first, batcher.submit(4, 'a', 5))  # room again

  answers, seen = _batches(submit, max_batch=4, window_s=0.3, capacity=2)
  assert answers == [10, 40] and seen == [[1, 4]]


def test_the_loop_survives_a_failing_batch_and_a_request_gone_mid_batch():
  calls = []

  def run(queries):
    calls.append(list(queries))
    if len(calls) == 1:
      raise ValueError('planted')
    threading.Event().wait(0.2)  # long enough for a request's timeout to pass
    return [q * 10 for q in queries]

  async def main():
    batcher = Batcher(run, max_batch=2, window_s=0.0, capacity=4)
    await batcher.start()
    try:
      with pytest.raises(ValueError, match='planted'):
        await batcher.submit(1, 'a', 5)  # the model raised: its request hears it
      with pytest.raises(asyncio.TimeoutError):
        await batcher.submit(2, 'a', 0.05)  # gone while its batch runs
      await asyncio.sleep(0.3)
      return await batcher.submit(3, 'a', 5)  # the loop still answers
    finally:
      await batcher.stop()

  assert asyncio.run(main()) == 30 and calls == [[1], [2], [3]]


def _png(image) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format='PNG')
  return buffer.getvalue()


SCENE = np.asarray(Image.open(bundled.SCENE).convert('RGB'))
# the red circle in four places: four different masks
SCENES = [_png(SCENE), _png(SCENE[:, ::-1]), _png(SCENE[::-1]), _png(SCENE[::-1, ::-1])]


@pytest.fixture(scope='module')
def server(tmp_path_factory):
  """The bundled model behind uvicorn on 127.0.0.1, batch sizes 1 and 4, a 300 ms
  window, a queue of 4; its TMPDIR and working folder are empty folders of the test."""
  root = tmp_path_factory.mktemp('serve')
  (root / 'tmp').mkdir()
  (root / 'cwd').mkdir()
  env = dict(os.environ, TMPDIR=str(root / 'tmp'))
  with ServerProcess(SERVER_ARGS, root / 'server.log', env=env, cwd=root / 'cwd') as running:
    running.root = root
    yield running


def _segment(server, image=SCENES[0], **fields):
  fields.setdefault('expression', bundled.SCENE_EXPRESSION)
  return post_segment(server.url, image, **fields)


def test_page_info_and_scene(server):
  page = urllib.request.urlopen(server.url).read().decode()
  assert all(f'id="{name}"' in page for name in ('image', 'scene', 'text', 'overlay', 'download'))
  with urllib.request.urlopen(server.url + 'scene.png') as r:
    assert r.read() == bundled.SCENE.read_bytes()
  status, _, _ = post(server.url + 'api/info', b'', 'text/plain')
  assert status == 405


def test_a_good_request(server):
  status, headers, reply = _segment(server, overlay=1, previews=1)
  assert status == 200 and headers['content-type'] == 'application/json'
  assert reply['text'] == 'Sure, the segmentation result: .' and reply['masks'] == 1
  assert reply['batch'] == {'size': 1, 'rows': 1}
  mask = png_array(reply['mask_png']) > 127
  target = np.asarray(Image.open(bundled.SCENE_TARGET).convert('L')) > 127
  assert (mask & target).sum() / (mask | target).sum() > 0.9
  assert png_array(reply['overlay_png']).shape == (128, 128, 3)
  scales = [png_array(s) for s in reply['scales_png']]
  assert len(scales) == 6 and all(s.shape == (128, 128, 3) for s in scales)
  assert not np.array_equal(scales[0], scales[-1])  # coarse to fine


def _form(fields, image=SCENES[0]):
  body, content_type = encode_form(fields, {'image': ('scene.png', image)})
  return body, content_type


BAD = {  # name: (body, content type), status, words of the message
    'unreadable image': (_form({'expression': 'the red circle'}, b'not an image'), 400,
                         '"image" (scene.png) is not a readable image'),
    'too large a body': (_form({'expression': 'the red circle'}, bytes(2**20 + 1)), 413,
                         'over the limit of 1048576'),
    'too many pixels': (_form({'expression': 'the red circle'}, _png(np.zeros((201, 200, 3)))),
                        400, '200x201 pixels is over the limit of 40000'),
    'empty text': (_form({'expression': ' '}), 400, '"expression" is empty'),
    'too long text': (_form({'expression': 'the red circle' * 5}), 400,
                      '"expression" is 70 characters long, over the limit of 60'),
    'special token': (_form({'expression': 'the <ge_start> circle'}), 400,
                      "\"expression\" holds '<ge_start>'"),
    'special token in a prompt': (_form({'prompt': '<image>\nsegment<|im_end|>'}), 400,
                                  "\"prompt\" holds '<|im_end|>'"),
    'no text': (_form({}), 400, 'give "expression"'),
    'both texts': (_form({'expression': 'a', 'prompt': 'b'}), 400, 'not both'),
    'image as text': (encode_form({'image': 'scene.png', 'expression': 'a'}, {}), 400,
                      'with the @'),
    'not multipart': ((b'{"expression": "a"}', 'application/json'), 400,
                      'send multipart/form-data'),
    'unknown field': (_form({'expression': 'a', 'colour': 'red'}), 400, 'unknown field "colour"'),
    'bad flag': (_form({'expression': 'a', 'previews': 'yes'}), 400, '"previews" is \'yes\''),
    'bad timeout': (_form({'expression': 'a', 'timeout': '31'}), 400, '"timeout" is \'31\''),
}


@pytest.mark.parametrize('name', BAD)
def test_bad_input_is_one_json_line_with_its_status(server, name):
  (body, content_type), expected, words = BAD[name]
  status, headers, reply = post(server.url + 'api/segment', body, content_type)
  assert (status, reply['status']) == (expected, expected)
  assert headers['content-type'] == 'application/json'
  assert words in reply['error'] and '\n' not in reply['error']


def test_other_hosts_and_huge_bodies_are_refused_at_once(server):
  request = urllib.request.Request(server.url + 'api/info', headers={'Host': 'evil.example'})
  with pytest.raises(urllib.error.HTTPError) as refused:
    urllib.request.urlopen(request)
  reply = json.loads(refused.value.read())
  assert refused.value.code == 400 and "not 'evil.example'" in reply['error']
  with socket.create_connection(server.url.split('/')[2].split(':')) as sock:
    sock.sendall(b'POST /api/segment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: '
                 b'multipart/form-data; boundary=x\r\nContent-Length: 999999999\r\n\r\n')
    answer = sock.recv(4096).decode()
  assert answer.startswith('HTTP/1.1 413') and 'connection: close' in answer.lower()


def test_a_request_that_cannot_be_answered_in_time_gets_504(server):
  status, _, reply = _segment(server, timeout=0.05)  # the window alone is 300 ms
  assert status == 504 and 'no answer within 0.05 s' in reply['error']


@pytest.fixture(scope='module')
def singles(server):
  """The answer to each of `SCENES` asked alone (batch size 1), with previews."""
  replies = [_segment(server, image, previews=1) for image in SCENES]
  assert all(status == 200 and r['batch'] == {'size': 1, 'rows': 1}
             for status, _, r in replies)
  masks = [r['mask_png'] for _, _, r in replies]
  assert len(set(masks)) == len(masks)  # four different answers
  return [r for _, _, r in replies]


def _together(server, images, **fields):
  """`images` posted at once by as many clients."""
  start = threading.Barrier(len(images))

  def ask(image):
    start.wait()
    return _segment(server, image, **fields)

  with concurrent.futures.ThreadPoolExecutor(len(images)) as pool:
    return list(pool.map(ask, images))


def _same_answer(reply, single) -> bool:
  return (reply['text'], reply['mask_png'], reply.get('scales_png')) == (
      single['text'], single['mask_png'], single.get('scales_png'))


def test_concurrent_requests_are_batched_and_answered_as_alone(server, singles):
  replies = _together(server, SCENES, previews=1)
  assert all(status == 200 for status, _, _ in replies)
  assert max(r['batch']['rows'] for _, _, r in replies) > 1  # several clients in one batch
  assert all(r['batch']['size'] == 4 for _, _, r in replies if r['batch']['rows'] > 1)
  for (_, _, reply), single in zip(replies, singles, strict=True):
    assert _same_answer(reply, single)


def test_a_full_queue_answers_503_with_a_retry_hint(server, singles):
  replies = _together(server, SCENES * 3, previews=1)
  full = [(headers, r) for status, headers, r in replies if status == 503]
  assert full and all(h['retry-after'] == '1' and 'already waiting' in r['error']
                      for h, r in full)
  answered = [(r, single) for (status, _, r), single in zip(replies, singles * 3) if status == 200]
  assert len(answered) + len(full) == len(replies)
  assert all(_same_answer(r, single) for r, single in answered)


def test_stopping_removes_the_temporary_folder(server):
  assert server.stop() == 0
  assert 'argenseg serve: stopped' in server.output()
  assert not any((server.root / 'tmp').iterdir()) and not any((server.root / 'cwd').iterdir())
