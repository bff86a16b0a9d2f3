"""What one request may be and how long it may wait (the `argenseg serve` flags)."""

import dataclasses


class RequestError(Exception):
  """A refused request: HTTP `status` and one line naming the problem and the fix."""

  def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
    super().__init__(message)
    self.status = status
    self.headers = headers or {}


@dataclasses.dataclass(frozen=True)
class Limits:
  max_bytes: int = 8 * 2**20     # the request body (image and text)
  max_pixels: int = 4096 * 4096  # image width x height
  max_text: int = 500            # characters of the expression or the question
  queue: int = 32                # requests waiting for the model; one more gets 503
  timeout_s: float = 60.0        # longest wait for an answer, the queue included
