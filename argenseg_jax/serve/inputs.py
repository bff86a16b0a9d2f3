"""`POST /api/segment` -> a checked `Query`. The body is multipart/form-data: `image` (a
file), `expression` or `prompt` (text), and optionally `overlay` and `previews` (1 or 0)
and `timeout` (seconds, at most the server's). The checks are those of `argenseg
segment`: the image is decoded by `image_io.decode_rgb` (what `read_rgb` does for files),
the text by `chat_template.parse_question` and `chat_template.check_text`. Every refusal
is a `RequestError` that names the field."""

from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect, Request

from argenseg_jax import chat_template, image_io
from argenseg_jax.serve.engine import Engine, Query
from argenseg_jax.serve.limits import Limits, RequestError

FIELDS = ('image', 'expression', 'prompt', 'overlay', 'previews', 'timeout')
EXAMPLE = "curl -F image=@photo.jpg -F expression='the red circle' URL/api/segment"


DRAIN_FACTOR = 4  # an oversized body is read up to this many limits, then the line closes


def _too_large(size: int, limits: Limits, close: bool) -> RequestError:
  return RequestError(413, f'the request is {"over " if close else ""}{size} bytes, over the '
                      f'limit of {limits.max_bytes}; send a smaller image (or start the server '
                      'with a larger --max-mb).', {'Connection': 'close'} if close else None)


async def read_form(request: Request, limits: Limits) -> FormData:
  """The multipart form of `request`. A body over `limits.max_bytes` is refused with 413
  after reading it without keeping it (so that the client hears the answer); one over
  `DRAIN_FACTOR` limits (by its Content-Length, or as it arrives) at once, closing the
  connection."""
  content_type = request.headers.get('content-type', '').lower()
  if not content_type.startswith('multipart/form-data'):
    raise RequestError(400, 'send multipart/form-data with an image file and an expression '
                       f'or a prompt, e.g. {EXAMPLE}.')
  declared = request.headers.get('content-length', '')
  if declared.isdigit() and int(declared) > DRAIN_FACTOR * limits.max_bytes:
    raise _too_large(int(declared), limits, close=True)
  body, size = bytearray(), 0
  try:
    async for chunk in request.stream():
      size += len(chunk)
      if size <= limits.max_bytes:
        body += chunk
      elif size > DRAIN_FACTOR * limits.max_bytes:
        raise _too_large(size, limits, close=True)
  except ClientDisconnect:
    raise RequestError(400, 'the client went away before sending the whole request.') from None
  if size > limits.max_bytes:
    raise _too_large(size, limits, close=False)

  async def replay():
    return {'type': 'http.request', 'body': bytes(body), 'more_body': False}

  return await Request(request.scope, replay).form(max_files=1, max_fields=len(FIELDS))


def _text(form: FormData, name: str, limits: Limits) -> str | None:
  value = form.get(name)
  if isinstance(value, UploadFile):
    raise RequestError(400, f'"{name}" is a file; send it as text: -F {name}=\'...\'.')
  if value is not None and len(value) > limits.max_text:
    raise RequestError(400, f'"{name}" is {len(value)} characters long, over the limit of '
                       f'{limits.max_text}; shorten it.')
  return value


def _flag(form: FormData, name: str) -> bool:
  value = form.get(name, '0')
  if value not in ('0', '1', 'true', 'false'):
    raise RequestError(400, f'"{name}" is {str(value)[:20]!r}; give 1 or 0.')
  return value in ('1', 'true')


def _timeout(form: FormData, limits: Limits) -> float:
  value = form.get('timeout')
  if value is None:
    return limits.timeout_s
  try:
    seconds = float(value)
  except (TypeError, ValueError):
    seconds = 0.0
  if not 0 < seconds <= limits.timeout_s:
    raise RequestError(400, f'"timeout" is {str(value)[:20]!r}; give a number of seconds in '
                       f'(0, {limits.timeout_s:g}].')
  return seconds


def _image(form: FormData, limits: Limits):
  upload = form.get('image')
  if not isinstance(upload, UploadFile):
    how = 'is text' if upload is not None else 'is missing'
    raise RequestError(400, f'"image" {how}: send the image file itself, e.g. -F '
                       'image=@photo.jpg (with the @).')
  try:
    return image_io.decode_rgb(upload.file, f'"image" ({upload.filename or "no name"})',
                               limits.max_pixels)
  except image_io.ImageError as e:
    raise RequestError(400, str(e)) from None


def read_query(form: FormData, engine: Engine, limits: Limits) -> Query:
  """The checked request of `form`."""
  for name in form:
    if name not in FIELDS:
      raise RequestError(400, f'unknown field "{name}"; the fields are {", ".join(FIELDS)}.')
    if len(form.getlist(name)) > 1:
      raise RequestError(400, f'"{name}" is given {len(form.getlist(name))} times; give it once.')
  prompt, expression = _text(form, 'prompt', limits), _text(form, 'expression', limits)
  try:
    question = chat_template.parse_question(prompt, expression, ('"prompt"', '"expression"'))
    if question is None:
      raise ValueError('give "expression" (what to segment, e.g. "the red circle") or '
                       '"prompt" (a whole question).')
    if isinstance(question, chat_template.Referring):
      chat_template.check_text(engine.tokenizer, expression, '"expression"')
    else:
      chat_template.check_text(engine.tokenizer, prompt, '"prompt"',
                               allowed=(chat_template.IMAGE,))
    width = engine.prompt_width(question)
  except ValueError as e:
    raise RequestError(400, str(e)) from None
  return Query(_image(form, limits), question, width, _flag(form, 'overlay'),
               _flag(form, 'previews'), _timeout(form, limits))
