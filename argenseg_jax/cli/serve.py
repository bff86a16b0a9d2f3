"""`argenseg serve`: the web page and HTTP API (`argenseg_jax/serve`) on a checkpoint.

The address is bound first (a port in use is refused before the model loads), then the
model is loaded and every compiled batch size is warmed up on the bundled scene; the
server answers once that is done. Everything it writes (the web stack's spooled large
uploads, native code's temporary files) goes to a temporary folder that it removes when
it stops (Ctrl-C or SIGTERM)."""

import argparse
import os
import signal
import socket
import sys
import tempfile

from argenseg_jax import bundled, chat_template, image_io, user_input
from argenseg_jax.sampler import SamplerConfig
from argenseg_jax.segmenter import Segmenter


def _port(text: str) -> int:
  port = user_input.non_negative_int(text)
  if port > 65535:
    raise argparse.ArgumentTypeError(f'must be a port in 0..65535, got {text!r}')
  return port


def _batch_sizes(text: str) -> list[int]:
  return [user_input.positive_int(v) for v in text.split(',')]


def add_arguments(parser) -> None:
  """The `argenseg serve` arguments (argparse), read by `run`."""
  parser.add_argument('--checkpoint', help='our checkpoint or a Hugging Face-style ARGenSeg '
                      'directory, with tokenizer files (default: the bundled small ARGenSeg)')
  parser.add_argument('--host', default='127.0.0.1', help='address to listen on (default '
                      '127.0.0.1: this machine only; 0.0.0.0 opens it to the network)')
  parser.add_argument('--port', type=_port, default=8000, help='default 8000; 0: any free port')
  parser.add_argument('--batch-sizes', type=_batch_sizes, default=[1, 4],
                      help='compiled batch sizes, comma-separated (default 1,4); requests '
                      'of several clients are grouped up to the largest')
  parser.add_argument('--window-ms', type=user_input.non_negative_int, default=10,
                      help='collection window: how long the oldest waiting request waits '
                      'for others to share its batch (default 10)')
  parser.add_argument('--queue', type=user_input.positive_int, default=32,
                      help='requests that may wait for the model; more get 503 (default 32)')
  parser.add_argument('--timeout', type=user_input.positive_int, default=60,
                      help='seconds a request may wait for its answer, queue included; then '
                      '504 (default 60)')
  parser.add_argument('--max-mb', type=user_input.positive_int, default=8,
                      help='largest request body in MiB (default 8)')
  parser.add_argument('--max-pixels', type=user_input.positive_int, default=4096 * 4096,
                      help='largest image, width x height (default 4096 x 4096)')
  parser.add_argument('--max-text', type=user_input.positive_int, default=500,
                      help='longest expression or question, in characters (default 500)')
  parser.add_argument('--max-new-tokens', type=user_input.positive_int, default=64)


def _listen(host: str, port: int) -> socket.socket:
  try:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family)
  except OSError as e:
    raise OSError(f'cannot listen on {host}:{port} ({e}); give another --host or --port.') \
        from None


def run(args) -> int:
  try:
    import uvicorn  # pylint: disable=import-outside-toplevel

    from argenseg_jax.serve import app, engine, limits  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError(f'argenseg serve needs the serve extra: pip install -e ".[serve]" '
                      f'({e}).') from None
  sock = _listen(args.host, args.port)
  host, port = sock.getsockname()[:2]
  url = f'http://{f"[{host}]" if ":" in host else host}:{port}/'
  print(f'argenseg serve: {url} (loading the model)', flush=True)
  if args.host not in ('127.0.0.1', 'localhost', '::1'):
    print(f'WARNING: listening on {args.host}: whoever reaches this machine can use the model.',
          file=sys.stderr)
  checkpoint = args.checkpoint or bundled.ARGENSEG_SMALL
  bounds = limits.Limits(max_bytes=args.max_mb * 2**20, max_pixels=args.max_pixels,
                         max_text=args.max_text, queue=args.queue, timeout_s=args.timeout)
  previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as on Ctrl-C
  saved_tmpdir = os.environ.get('TMPDIR')
  try:
    with sock, tempfile.TemporaryDirectory(prefix='argenseg-serve-') as folder:
      tempfile.tempdir = folder  # any temporary file of the web stack (large uploads) too
      os.environ['TMPDIR'] = folder  # and of native code started from here on
      seg = Segmenter.load(checkpoint, sampler_config=SamplerConfig(
          max_new_tokens=args.max_new_tokens))
      models = engine.Engine(seg, args.batch_sizes)
      models.warm_up(image_io.read_rgb(bundled.SCENE),
                     chat_template.Referring((bundled.SCENE_EXPRESSION,)))
      web = app.create_app(models, bounds, args.window_ms / 1000,
                           str(args.checkpoint or f'the bundled small ARGenSeg ({checkpoint})'),
                           args.host)
      print(f'argenseg serve: ready on {url} (batch sizes '
            f'{",".join(map(str, models.batch_sizes))}, window {args.window_ms} ms)', flush=True)
      uvicorn.Server(uvicorn.Config(web, log_level='warning')).run(sockets=[sock])
  except KeyboardInterrupt:
    pass
  finally:
    tempfile.tempdir = None
    if saved_tmpdir is None:
      os.environ.pop('TMPDIR', None)
    else:
      os.environ['TMPDIR'] = saved_tmpdir
    signal.signal(signal.SIGTERM, previous)
  print('argenseg serve: stopped', flush=True)
  return 0
