"""The one progress bar everybody calls: tqdm on a terminal, whole lines in a log.

tqdm redraws in place with `\\r`; written to a pipe or a file (CI, `nohup`, `2>&1 | tee`) that
gives one endless line. So when the stream is not a terminal the bar writes through
`_LineWriter`, which turns each of tqdm's redraws into one whole line, at most one every
`interval` seconds, with count/total, rate and ETA spelled out.

Example:

  with ProgressBar(total=len(videos), unit="videos", desc="converting") as bar:
    for video in videos:
      convert(video)
      bar.update()
"""

import sys
from typing import Optional, TextIO

from tqdm import tqdm


class _LineWriter:
  """A file for tqdm that writes each `\\r` redraw as one line; padding and blanks dropped."""

  def __init__(self, stream: TextIO):
    self._stream = stream

  def write(self, text: str) -> None:
    for part in text.replace("\r", "\n").split("\n"):
      part = part.rstrip()
      if part:
        self._stream.write(part + "\n")

  def flush(self) -> None:
    self._stream.flush()


class _Tqdm(tqdm):
  """tqdm with `rate_text` ("2.50 videos/s") and `note` (" | 2 failed") for log formats."""

  note = ""

  @property
  def format_dict(self):
    d = super().format_dict
    rate = d["rate"]
    if rate is None and d["elapsed"]:
      rate = (d["n"] - d["initial"]) / d["elapsed"]
    d["rate_text"] = f"{rate:.2f} {d['unit']}/s" if rate else f"? {d['unit']}/s"
    d["note"] = f" | {self.note}" if self.note else ""
    return d


def _log_format(desc: str, known_total: bool) -> str:
  prefix = desc.replace("{", "{{").replace("}", "}}") + " " if desc else ""
  if known_total:
    return (prefix + "{n_fmt}/{total_fmt} {unit} {percentage:.0f}% | {rate_text} | "
            "ETA {remaining} | elapsed {elapsed}{note}")
  return prefix + "{n_fmt} {unit} | {rate_text} | elapsed {elapsed}{note}"


def is_terminal(stream: Optional[TextIO]) -> bool:
  """Whether `stream` (stderr when None) is a terminal, so that a bar may redraw in place."""
  stream = sys.stderr if stream is None else stream
  isatty = getattr(stream, "isatty", None)
  return bool(isatty and isatty())


class ProgressBar:
  """Reports progress of a loop on `stream` (stderr by default).

  Args:
    total: int. The expected count, or None when unknown (no percentage, no ETA).
    unit: str. What is counted, shown in the count and the rate. Defaults to "it".
    desc: str. A prefix naming the loop.
    stream: the text stream to write to. Defaults to `sys.stderr`.
    interval: float. Seconds between lines when `stream` is not a terminal. Defaults to 10.
    initial: int. The count already done (a resumed run): the rate and ETA count only what
      this bar sees. Defaults to 0.
    disable: bool. Write nothing (a caller that asked for silence). Defaults to False.
  """

  def __init__(self, total: Optional[int] = None, unit: str = "it", desc: str = "",
               stream: Optional[TextIO] = None, interval: float = 10.0, initial: int = 0,
               disable: bool = False):
    self._stream = sys.stderr if stream is None else stream
    self.tty = is_terminal(self._stream)
    if self.tty:
      self._bar = _Tqdm(total=total, unit=unit, desc=desc, file=self._stream, initial=initial,
                        dynamic_ncols=True, disable=disable)
    else:
      # miniters=1: look at the clock on every update, so a slow loop still gets its lines.
      self._bar = _Tqdm(total=total, unit=unit, desc=desc, file=_LineWriter(self._stream),
                        initial=initial, mininterval=interval, miniters=1, leave=False,
                        bar_format=_log_format(desc, bool(total)), disable=disable)

  @property
  def count(self) -> int:
    return self._bar.n

  def update(self, n: int = 1, note: Optional[str] = None) -> None:
    """Adds `n` to the count; `note` (e.g. "3 failed") replaces the text at the end of the line."""
    if note is not None:
      self._bar.note = note
      if self.tty:
        self._bar.set_postfix_str(note, refresh=False)
    self._bar.update(n)

  def write(self, text: str) -> None:
    """Writes `text` as its own line on the bar's stream without splicing it into the bar."""
    self._bar.write(text, file=self._stream)

  def close(self) -> None:
    """Writes the final line (count, rate, elapsed), unless a log has it already. Safe twice."""
    if not self.tty and not self._bar.disable and self._bar.last_print_n != self._bar.n:
      self._bar.refresh()  # leave=False: tqdm would repeat the last line, or clear it.
    self._bar.close()

  def __enter__(self) -> "ProgressBar":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
