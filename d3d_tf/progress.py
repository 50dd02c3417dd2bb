"""A dependency-free progress bar for long loops: count, rate, ETA and elapsed time.

On a terminal it redraws one line in place; in a log (CI, `nohup`, a pipe) it writes a whole line
every `interval` seconds instead, so logs stay readable.

Example:

  with ProgressBar(total=len(videos), unit="videos", desc="converting") as bar:
    for video in videos:
      convert(video)
      bar.update()
"""

import sys
import time
from typing import Callable, Optional, TextIO


def format_duration(seconds: float) -> str:
  """`H:MM:SS`, or `M:SS` under an hour; `?` when unknown."""
  if seconds is None or seconds != seconds or seconds == float("inf"):
    return "?"
  seconds = int(round(seconds))
  hours, rest = divmod(seconds, 3600)
  minutes, seconds = divmod(rest, 60)
  if hours:
    return f"{hours}:{minutes:02d}:{seconds:02d}"
  return f"{minutes}:{seconds:02d}"


class ProgressBar:
  """Reports progress of a loop on `stream` (stderr by default).

  Args:
    total: int. The expected count, or None when unknown (no percentage, no ETA).
    unit: str. What is counted, shown in the count and the rate. Defaults to "it".
    desc: str. A prefix naming the loop.
    stream: the text stream to write to. Defaults to `sys.stderr`.
    interval: float. Seconds between lines when `stream` is not a terminal. Defaults to 10.
    clock: a zero-argument function returning seconds; tests pass a fake one.
  """

  def __init__(self, total: Optional[int] = None, unit: str = "it", desc: str = "",
               stream: Optional[TextIO] = None, interval: float = 10.0,
               clock: Callable[[], float] = time.monotonic):
    self.total = total
    self.unit = unit
    self.desc = desc
    self.count = 0
    self.note = ""
    self._stream = stream if stream is not None else sys.stderr
    isatty = getattr(self._stream, "isatty", None)
    self._tty = bool(isatty and isatty())
    # A terminal redraws cheaply; a log gets a line only every `interval` seconds.
    self._interval = 0.1 if self._tty else interval
    self._clock = clock
    self._start = clock()
    self._last_write = self._start
    self._last_width = 0
    self._closed = False

  def update(self, n: int = 1, note: Optional[str] = None) -> None:
    """Adds `n` to the count; `note` (e.g. "3 failed") replaces the text at the end of the line."""
    self.count += n
    if note is not None:
      self.note = note
    now = self._clock()
    if now - self._last_write >= self._interval:
      self._write(self.line(now), final=False)
      self._last_write = now

  def line(self, now: Optional[float] = None) -> str:
    """The current status line, e.g. `converting 30/120 videos 25% | 2.50 videos/s | ETA 0:36`."""
    now = self._clock() if now is None else now
    elapsed = max(now - self._start, 0.0)
    rate = self.count / elapsed if elapsed > 0 else 0.0
    parts = []
    if self.total:
      percent = 100.0 * self.count / self.total
      parts.append(f"{self.count}/{self.total} {self.unit} {percent:.0f}%")
    else:
      parts.append(f"{self.count} {self.unit}")
    parts.append(f"{rate:.2f} {self.unit}/s")
    if self.total and not self._closed:
      remaining = max(self.total - self.count, 0)
      parts.append("ETA " + format_duration(remaining / rate if rate > 0 else None))
    parts.append("elapsed " + format_duration(elapsed))
    if self.note:
      parts.append(self.note)
    text = " | ".join(parts)
    return f"{self.desc} {text}" if self.desc else text

  def _write(self, text: str, final: bool) -> None:
    if self._tty:
      # Pad with spaces so a shorter line fully covers the one it replaces.
      padding = " " * max(self._last_width - len(text), 0)
      self._stream.write("\r" + text + padding + ("\n" if final else ""))
      self._last_width = len(text)
    else:
      self._stream.write(text + "\n")
    self._stream.flush()

  def close(self) -> None:
    """Writes the final line (count, overall rate, elapsed). Safe to call twice."""
    if self._closed:
      return
    self._closed = True
    self._write(self.line(), final=True)

  def __enter__(self) -> "ProgressBar":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
