"""A process pool that survives its workers: a decoder that segfaults fails one task, not a run.

Kept apart from what the tasks are (`convert_lib` encodes videos): results come back in task
order, at most 4 x workers tasks are in flight (which bounds memory), and a task whose worker
died is rerun alone in a fresh process to tell which one crashed the shared pool.
"""

import collections
import concurrent.futures
import multiprocessing
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator


def _process_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
  # Spawn, not fork: the parent may already run TensorFlow threads, which fork would copy.
  return concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=multiprocessing.get_context("spawn"))


def _ready() -> bool:
  return True


def _start_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
  """A pool whose workers are known to start: a crash in start-up (an import error) must stop
  the run, not be blamed on each task in turn."""
  executor = _process_pool(workers)
  try:
    executor.submit(_ready).result()
  except BrokenProcessPool:
    executor.shutdown(wait=False, cancel_futures=True)
    raise RuntimeError("Worker processes die on start-up; run with --workers=1 to see the "
                       "error.") from None
  return executor


def _run_isolated(task, run: Callable, crashed: Callable[[Any], Any]):
  """Reruns a task alone in a fresh process; `crashed(task)` if that worker dies too."""
  with _process_pool(1) as executor:
    try:
      return executor.submit(run, task).result()
    except BrokenProcessPool:
      return crashed(task)


def _submit(executor, run: Callable, task) -> concurrent.futures.Future:
  """`executor.submit`, except that a pool already broken gives a failed future, handled where
  results are collected, instead of an exception here."""
  try:
    return executor.submit(run, task)
  except BrokenProcessPool as e:
    future = concurrent.futures.Future()
    future.set_exception(e)
    return future


def run_in_order(tasks: Iterable, workers: int, run: Callable,
                 crashed: Callable[[Any], Any]) -> Iterator:
  """Yields `run(task)` for each task, in task order, using `workers` processes.

  A worker that dies fails only the task that killed it (`crashed(task)` stands for its
  result): the pool is rebuilt and the rest resubmitted. `run` must be a module-level
  function, for worker processes to import.
  """
  if workers <= 1:
    yield from map(run, tasks)
    return
  tasks = iter(tasks)
  executor = _start_pool(workers)
  pending = collections.deque()
  try:
    while True:
      while len(pending) < 4 * workers:
        task = next(tasks, None)
        if task is None:
          break
        pending.append((task, _submit(executor, run, task)))
      if not pending:
        return
      task, future = pending.popleft()
      try:
        result = future.result()
      except BrokenProcessPool:
        executor.shutdown(wait=False, cancel_futures=True)
        result = _run_isolated(task, run, crashed)
        executor = _start_pool(workers)
        pending = collections.deque(
            (task, _submit(executor, run, task)) for task, _ in pending)
      yield result
  finally:
    executor.shutdown(wait=True, cancel_futures=True)


class IsolatedRunner:
  """`run(task)` in a child process, one task at a time; a task that kills the child gets
  `crashed(task)` and the next task a fresh child. For callers that bring their own parallelism
  (a Beam DoFn) but must survive a decoder that segfaults.
  """

  def __init__(self, run: Callable, crashed: Callable[[Any], Any]):
    self._run = run
    self._crashed = crashed
    self._executor = None

  def __call__(self, task):
    if self._executor is None:
      self._executor = _start_pool(1)
    try:
      return self._executor.submit(self._run, task).result()
    except BrokenProcessPool:
      self.close()
      return self._crashed(task)

  def close(self) -> None:
    if self._executor is not None:
      self._executor.shutdown(wait=False, cancel_futures=True)
      self._executor = None
