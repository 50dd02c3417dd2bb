"""The closing table of a training run: the final metrics, aligned, rounded, only those that apply.

`final_metrics.json` keeps every value at full precision; this is what a person reads at the end
of a log, so it drops what says nothing: `None` (no validation set), the teacher's terms of a
stream that has no teacher, and a learning rate that a schedule has decayed to exactly 0.
"""

import math
from typing import Optional

# Metrics only a run with a teacher (--stream=d3d) has.
TEACHER_METRICS = ("distill_loss", "teacher_top1")
# Metrics that, when exactly 0, mean "not used" rather than a measurement.
ZERO_MEANS_ABSENT = TEACHER_METRICS + ("learning_rate",)


def _applies(name: str, value, stream: str) -> bool:
  if value is None:
    return False
  if stream and stream != "d3d" and name in TEACHER_METRICS:
    return False
  return not (name in ZERO_MEANS_ABSENT and value == 0)


def _duration(seconds: float) -> str:
  minutes, secs = divmod(int(round(seconds)), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{secs:02d}"


def format_value(name: str, value) -> str:
  """A value rounded for reading: counts whole, seconds with H:MM:SS, small rates in e-notation."""
  if isinstance(value, bool) or not isinstance(value, float) or not math.isfinite(value):
    return str(value)  # Counts, text and inf/nan as they are.
  if name == "train_seconds":
    return f"{value:.1f} ({_duration(value)})"
  if name.endswith("_per_second") or abs(value) >= 100:
    return f"{value:.1f}"
  if value != 0 and abs(value) < 1e-3:
    return f"{value:.3e}"
  return f"{value:.4f}"


def table(metrics: dict, stream: Optional[str] = "", title: str = "Final metrics") -> str:
  """`metrics` as `title` then one `  name  value` line per metric that applies.

  Args:
    metrics: What `train_lib.train` returns.
    stream: The run's `--stream`; "rgb" or "flow" drops the teacher's metrics. "" keeps them
      unless they are 0.
    title: The first line.
  """
  rows = [(name, format_value(name, value)) for name, value in metrics.items()
          if _applies(name, value, stream or "")]
  if not rows:
    return f"{title}: none"
  width = max(len(name) for name, _ in rows)
  return "\n".join([f"{title}:"] + [f"  {name:<{width}}  {value}" for name, value in rows])
