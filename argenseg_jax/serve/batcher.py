"""Cross-client batching: requests that arrive close together and share a key (their
prompt width) run as one batch.

The oldest waiting request opens a collection window of `window_s` from its arrival; its
batch closes when the window ends or `max_batch` requests of its key wait, and runs in
one worker thread, one batch at a time. Requests that arrive while a batch runs wait and
form the next one (their window has often passed by then, so it goes at once). At most
`capacity` requests wait (`QueueFull` beyond); one whose timeout passes leaves the queue,
or, if its batch is running, its answer is dropped.
"""

import asyncio
import collections
import concurrent.futures
import dataclasses
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any


class QueueFull(Exception):
  """`capacity` requests are already waiting."""


@dataclasses.dataclass
class _Waiting:
  query: Any
  key: Hashable
  arrived: float
  answer: asyncio.Future


class Batcher:
  """Runs `run(queries) -> answers` (one answer per query, in order) on batches of at
  most `max_batch` queries of one key."""

  def __init__(self, run: Callable[[Sequence[Any]], list], max_batch: int, window_s: float,
               capacity: int):
    self._run = run
    self.max_batch = max_batch
    self.window_s = window_s
    self.capacity = capacity
    self._waiting: collections.deque[_Waiting] = collections.deque()
    self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='argenseg-model')
    self._wake: asyncio.Event | None = None
    self._task: asyncio.Task | None = None

  async def start(self) -> None:
    self._wake = asyncio.Event()
    self._task = asyncio.create_task(self._loop())

  async def stop(self) -> None:
    self._task.cancel()
    await asyncio.gather(self._task, return_exceptions=True)
    self._worker.shutdown(wait=True)
    for item in self._waiting:
      item.answer.cancel()

  async def submit(self, query, key: Hashable, timeout_s: float):
    """`query`'s answer; `QueueFull`, or `asyncio.TimeoutError` after `timeout_s`."""
    if self._task.done():  # a bug stopped the loop: say so at once, not after a timeout
      raise RuntimeError('the model loop has stopped; restart the server')
    self._prune()
    if len(self._waiting) >= self.capacity:
      raise QueueFull(f'{self.capacity} requests are waiting')
    item = _Waiting(query, key, time.monotonic(), asyncio.get_running_loop().create_future())
    self._waiting.append(item)
    self._wake.set()
    return await asyncio.wait_for(item.answer, timeout_s)

  def _prune(self) -> None:
    """Drops the requests that timed out while waiting."""
    self._waiting = collections.deque(i for i in self._waiting if not i.answer.done())

  async def _next_batch(self) -> list[_Waiting]:
    while True:
      self._prune()
      self._wake.clear()
      if not self._waiting:
        await self._wake.wait()
        continue
      head = self._waiting[0]
      batch = [i for i in self._waiting if i.key == head.key][:self.max_batch]
      left = head.arrived + self.window_s - time.monotonic()
      if len(batch) == self.max_batch or left <= 0:
        for item in batch:
          self._waiting.remove(item)
        return batch
      try:
        await asyncio.wait_for(self._wake.wait(), left)
      except asyncio.TimeoutError:
        pass

  async def _loop(self) -> None:
    loop = asyncio.get_running_loop()
    while True:
      batch = await self._next_batch()
      try:
        answers = await loop.run_in_executor(self._worker, self._run, [i.query for i in batch])
        if len(answers) != len(batch):
          raise RuntimeError(f'{len(answers)} answers for a batch of {len(batch)}')
      except Exception as e:  # pylint: disable=broad-except  # a bug: each request reports it
        answers = None
        failure = e
      for k, item in enumerate(batch):
        if item.answer.done():  # timed out while its batch ran: the answer is dropped
          continue
        if answers is None:
          item.answer.set_exception(failure)
        else:
          item.answer.set_result(answers[k])
