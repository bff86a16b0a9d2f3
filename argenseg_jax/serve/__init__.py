"""`argenseg serve`: a web page and an HTTP API on a loaded ARGenSeg (Starlette + uvicorn).

  limits.py   what one request may be and how long it may wait
  inputs.py   a multipart request -> a checked `Query` (or a `RequestError`)
  engine.py   one `Segmenter` per compiled batch size, sharing one model's weights
  batcher.py  cross-client batching: a collection window, a bounded queue, timeouts
  reply.py    an answer -> JSON (base64 PNGs)
  page.py     the page (HTML, CSS and script in one string)
  app.py      the routes
  client.py   a standard-library client: start a server, post a request
"""
