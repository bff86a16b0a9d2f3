"""The routes of `argenseg serve`:

  GET  /              the page (`page.py`)
  GET  /api/info      the model, the compiled batch sizes, the window and the limits
  GET  /scene.png     the bundled scene (its expression is in /api/info)
  POST /api/segment   image + expression or prompt -> answer text and mask (`inputs.py`,
                      `reply.py`)

Every error is JSON, `{"error": MESSAGE, "status": STATUS}`: 400 bad input, 413 too
large a body, 503 queue full (with Retry-After), 504 no answer in time, 404/405 no such
route; a 500 is a bug.
"""

import asyncio
import contextlib
import dataclasses
import time

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from argenseg_jax import bundled
from argenseg_jax.serve import inputs, reply
from argenseg_jax.serve.batcher import Batcher, QueueFull
from argenseg_jax.serve.engine import Engine
from argenseg_jax.serve.limits import Limits, RequestError
from argenseg_jax.serve.page import PAGE

RETRY_AFTER_S = 1


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
  return JSONResponse({'error': message, 'status': status}, status, headers)


async def _refused(_, exc: RequestError) -> JSONResponse:
  return _error(exc.status, str(exc), exc.headers)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
  where = f'{request.method} {request.url.path}'
  message = {404: f'no such page: {where}; the page is GET /, the API POST /api/segment.',
             405: f'{where} is not allowed; the API is POST /api/segment.'}
  return _error(exc.status_code, message.get(exc.status_code, exc.detail), exc.headers)


async def _bug(_, exc: Exception) -> JSONResponse:
  return _error(500, f'internal error ({type(exc).__name__}: {exc}); this is a bug.')


class HostCheck:
  """ASGI middleware: requests whose Host header is not in `hosts` get a JSON 400."""

  def __init__(self, app, hosts: list[str]):
    self.app = app
    self.hosts = hosts

  async def __call__(self, scope, receive, send):
    if scope['type'] == 'http' and '*' not in self.hosts:
      host = Headers(scope=scope).get('host', '')
      name = host[:host.find(']') + 1] if host.startswith('[') else host.split(':')[0]
      if name not in self.hosts:
        response = _error(400, f'this server answers Host {", ".join(self.hosts)}, not '
                          f'{host!r}; use one of those (or start it with --host).')
        return await response(scope, receive, send)
    return await self.app(scope, receive, send)


def allowed_hosts(host: str) -> list[str]:
  """The Host headers answered: this machine's names when listening on it (a web page on
  another site cannot reach the server by rebinding its own name to 127.0.0.1), any
  when listening on every address."""
  if host in ('0.0.0.0', '::', ''):
    return ['*']
  return sorted({'127.0.0.1', 'localhost', '[::1]', host if ':' not in host else f'[{host}]'})


def create_app(engine: Engine, limits: Limits, window_s: float, model: str,
               host: str = '127.0.0.1') -> Starlette:
  """The app on `engine`; `model` names the checkpoint in /api/info; `host` is the
  listening address (`allowed_hosts`)."""
  batcher = Batcher(engine.run, max(engine.batch_sizes), window_s, limits.queue)
  scene = bundled.SCENE.read_bytes()

  async def page(_):
    return HTMLResponse(PAGE)

  async def info(_):
    return JSONResponse({'model': model, 'batch_sizes': list(engine.batch_sizes),
                         'window_ms': window_s * 1000, 'limits': dataclasses.asdict(limits),
                         'fields': list(inputs.FIELDS),
                         'scene': {'url': '/scene.png', 'expression': bundled.SCENE_EXPRESSION}})

  async def scene_png(_):
    return Response(scene, media_type='image/png')

  async def segment(request: Request):
    start = time.perf_counter()
    form = await inputs.read_form(request, limits)
    try:
      query = await run_in_threadpool(inputs.read_query, form, engine, limits)
    finally:
      await form.close()
    try:
      answer = await batcher.submit(query, query.width, query.timeout_s)
    except QueueFull:
      raise RequestError(503, f'{limits.queue} requests are already waiting for the model; '
                         f'retry in {RETRY_AFTER_S} s.',
                         {'Retry-After': str(RETRY_AFTER_S)}) from None
    except asyncio.TimeoutError:
      raise RequestError(504, f'no answer within {query.timeout_s:g} s (the model is busy); '
                         'retry later, or give a longer "timeout".') from None
    body = await run_in_threadpool(reply.to_json, query, answer)
    body['seconds'] = round(time.perf_counter() - start, 4)
    return JSONResponse(body)

  @contextlib.asynccontextmanager
  async def lifespan(_):
    await batcher.start()
    try:
      yield
    finally:
      await batcher.stop()

  return Starlette(
      routes=[Route('/', page), Route('/api/info', info), Route('/scene.png', scene_png),
              Route('/api/segment', segment, methods=['POST'])],
      exception_handlers={RequestError: _refused, HTTPException: _http_error, Exception: _bug},
      middleware=[Middleware(HostCheck, hosts=allowed_hosts(host))],
      lifespan=lifespan)
