"""A client of `argenseg serve` in the standard library alone: start a server as a
subprocess, post requests, read the PNGs of a reply.

  with ServerProcess(['--batch-sizes', '1,4'], log='serve.log') as server:
    status, headers, reply = post_segment(server.url, png_bytes, expression='the red circle')
    mask = png_array(reply['mask_png'])   # uint8 [H, W], 255 inside
"""

import base64
import io
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image


def encode_form(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
  """multipart/form-data of text `fields` and `files` ({name: (filename, bytes)}) ->
  (body, content type)."""
  boundary = secrets.token_hex(16)
  parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
           f'{value}\r\n'.encode() for name, value in fields.items()]
  parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + data + b'\r\n' for name, (filename, data) in files.items()]
  return b''.join(parts) + f'--{boundary}--\r\n'.encode(), \
      f'multipart/form-data; boundary={boundary}'


def _lower(headers) -> dict[str, str]:
  return {k.lower(): v for k, v in headers.items()}


def post(url: str, body: bytes, content_type: str, wait_s: float = 300
         ) -> tuple[int, dict[str, str], dict]:
  """(status, headers (lower-case names), JSON reply) of a POST; an HTTP error status is
  returned, not raised."""
  request = urllib.request.Request(url, data=body, headers={'Content-Type': content_type})
  try:
    with urllib.request.urlopen(request, timeout=wait_s) as r:
      return r.status, _lower(r.headers), json.loads(r.read())
  except urllib.error.HTTPError as e:
    return e.code, _lower(e.headers), json.loads(e.read())


def post_segment(server: str, image: bytes, filename: str = 'image.png', wait_s: float = 300,
                 **fields) -> tuple[int, dict[str, str], dict]:
  """`POST server/api/segment` with `image` and `fields` (expression=..., previews=1,
  timeout=..., ...; None values left out), waiting `wait_s` for the reply."""
  body, content_type = encode_form({k: str(v) for k, v in fields.items() if v is not None},
                                   {'image': (filename, image)})
  return post(server.rstrip('/') + '/api/segment', body, content_type, wait_s)


def png_array(b64: str) -> np.ndarray:
  """A base64 PNG of a reply -> uint8 `[H, W]` or `[H, W, 3]`."""
  return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


class ServerProcess:
  """`argenseg serve --port 0 ARGS` in a subprocess, its output in the file `log`; entered
  once it answers `/api/info`; `stop()` (or leaving) stops it like Ctrl-C and returns its
  exit status."""

  def __init__(self, args: list[str], log, ready_s: float = 300, **popen):
    self.args, self.log, self.ready_s, self.popen = args, log, ready_s, popen
    self.url = ''
    self.process = None

  def __enter__(self) -> 'ServerProcess':
    with open(self.log, 'wb') as out:
      self.process = subprocess.Popen(
          [sys.executable, '-m', 'argenseg_jax.cli', 'serve', '--port', '0', *self.args],
          stdout=out, stderr=subprocess.STDOUT, **self.popen)
    deadline = time.monotonic() + self.ready_s
    while time.monotonic() < deadline and self.process.poll() is None:
      found = re.search(r'http://\S+?:\d+/', self.output())
      if found:
        self.url = found.group(0)
        try:
          urllib.request.urlopen(self.url + 'api/info', timeout=5).close()
          return self
        except OSError:
          pass
      time.sleep(0.2)
    self.stop()
    raise RuntimeError(f'argenseg serve did not start; its output:\n{self.output()[-3000:]}')

  def output(self) -> str:
    with open(self.log, errors='replace') as f:
      return f.read()

  def stop(self) -> int:
    if self.process.poll() is None:
      os.kill(self.process.pid, signal.SIGINT)
      try:
        self.process.wait(60)
      except subprocess.TimeoutExpired:
        self.process.kill()
    return self.process.wait()

  def __exit__(self, *exc) -> None:
    self.stop()
