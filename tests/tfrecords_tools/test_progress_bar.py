"""The progress bar: its numbers (count, rate, ETA, elapsed) and how it writes to a log or a TTY."""

import io

from d3d_tf import progress


class _Clock:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_line_shows_count_rate_eta_and_elapsed():
  clock = _Clock()
  bar = progress.ProgressBar(total=120, unit="videos", desc="converting", stream=io.StringIO(),
                             clock=clock)
  clock.now += 12.0
  bar.update(30, note="2 failed")
  assert bar.line() == ("converting 30/120 videos 25% | 2.50 videos/s | ETA 0:36 | "
                        "elapsed 0:12 | 2 failed")


def test_without_total_there_is_no_eta():
  clock = _Clock()
  bar = progress.ProgressBar(unit="frames", stream=io.StringIO(), clock=clock)
  clock.now += 4.0
  bar.update(10)
  assert bar.line() == "10 frames | 2.50 frames/s | elapsed 0:04"


def test_log_gets_one_line_per_interval_and_a_final_line():
  clock, stream = _Clock(), io.StringIO()
  bar = progress.ProgressBar(total=100, unit="videos", stream=stream, interval=10.0, clock=clock)
  for _ in range(100):
    clock.now += 0.5  # 50 s in all: lines at 10, 20, 30, 40 and 50 s.
    bar.update()
  bar.close()
  bar.close()
  lines = stream.getvalue().splitlines()
  assert len(lines) == 6
  assert lines[0].startswith("20/100 videos 20% | 2.00 videos/s | ETA 0:40")
  assert lines[-1] == "100/100 videos 100% | 2.00 videos/s | elapsed 0:50"
  assert "\r" not in stream.getvalue()


def test_terminal_redraws_in_place_and_ends_with_a_newline():
  clock, stream = _Clock(), _Terminal()
  with progress.ProgressBar(total=3, stream=stream, clock=clock) as bar:
    for _ in range(3):
      clock.now += 1.0
      bar.update()
  text = stream.getvalue()
  assert text.count("\r") == 4 and text.endswith("\n") and text.count("\n") == 1


def test_format_duration():
  assert progress.format_duration(59.6) == "1:00"
  assert progress.format_duration(3725) == "1:02:05"
  assert progress.format_duration(None) == "?"
