"""The progress bar: whole lines with count, rate and ETA in a log; tqdm's redraws on a TTY."""

import io
import re

from d3d_tf.common import progress

_LOG_LINE = re.compile(r"^converting (\d+)/120 videos \d+% \| (\?|\d+\.\d\d) videos/s \| "
                       r"ETA (\?|\d\d:\d\d) \| elapsed \d\d:\d\d( \| 2 failed)?$")


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_log_gets_whole_lines_with_count_rate_and_eta():
  stream = io.StringIO()
  with progress.ProgressBar(total=120, unit="videos", desc="converting", stream=stream,
                            interval=0.0) as bar:
    for i in range(30):
      bar.update(note="2 failed" if i == 29 else None)
  text = stream.getvalue()
  assert "\r" not in text and text.endswith("\n")
  lines = text.splitlines()
  assert all(_LOG_LINE.match(line) for line in lines), lines
  # One line per update, the last one not repeated on close.
  assert [int(_LOG_LINE.match(line).group(1)) for line in lines] == list(range(31))
  assert re.search(r"\d+\.\d\d videos/s \| ETA \d\d:\d\d", lines[-1])
  assert lines[-1].endswith(" | 2 failed")


def test_log_writes_no_line_between_intervals():
  stream = io.StringIO()
  with progress.ProgressBar(total=100, unit="videos", stream=stream, interval=1e9) as bar:
    for _ in range(100):
      bar.update()
  lines = stream.getvalue().splitlines()
  assert len(lines) == 2  # The start and the final line.
  assert lines[-1].startswith("100/100 videos 100% | ")


def test_without_total_there_is_a_rate_but_no_eta():
  stream = io.StringIO()
  with progress.ProgressBar(unit="frames", stream=stream, interval=0.0, initial=5) as bar:
    bar.update(10)
  lines = stream.getvalue().splitlines()
  assert lines[0].startswith("5 frames | ")
  assert re.match(r"^15 frames \| (\?|\d+\.\d\d) frames/s \| elapsed \d\d:\d\d$", lines[-1])
  assert "ETA" not in stream.getvalue()


def test_terminal_redraws_in_place_and_write_keeps_its_own_line():
  stream = _Terminal()
  with progress.ProgressBar(total=3, desc="steps", stream=stream) as bar:
    bar.update()
    bar.write("validation: top1 0.5")
    bar.update(2)
  text = stream.getvalue()
  assert "\r" in text and text.endswith("\n")
  assert "validation: top1 0.5\n" in text
  assert re.search(r"3/3", text) and bar.count == 3
