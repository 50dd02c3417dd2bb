"""Mean and spread of the results table over runs that differ only in their seed.

The question the report must answer is whether D3D's gain over the RGB baseline is larger than
seed noise, so the D3D - RGB difference is taken per seed (paired: same data, same seed for
both) and summarised by its mean, its standard deviation and its standard error.
"""

import math
from typing import Dict, List, Sequence, Tuple

import numpy as np

from d3d_tf.reporting import results_table
from d3d_tf.reporting import student_t


def stats(values: Sequence[float]) -> Dict[str, float]:
  values = np.asarray(values, np.float64)
  std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
  return dict(mean=float(values.mean()), std=std,
              stderr=std / math.sqrt(len(values)) if len(values) > 1 else float("nan"),
              min=float(values.min()), max=float(values.max()), values=values.tolist())


def aggregate(tables: Sequence[List[Dict]]) -> Dict:
  """Per model: top-1/top-5/seconds statistics; plus D3D - RGB, two-stream - RGB and the gap
  D3D closes."""
  if not tables:
    raise ValueError("No seed runs to aggregate.")
  names = [row["model"] for row in tables[0]]
  models = {}
  for index, name in enumerate(names):
    rows = [table[index] for table in tables]
    models[name] = dict(needs_flow=rows[0]["needs_flow"],
                        top1=stats([r["top1"] for r in rows]),
                        top5=stats([r["top5"] for r in rows]),
                        seconds_per_video=stats([r["seconds_per_video"] for r in rows]))
  by_name = [{r["model"]: r for r in table} for table in tables]
  difference = stats([t["D3D"]["top1"] - t["RGB"]["top1"] for t in by_name])
  two_stream = stats([t["two-stream (RGB + flow)"]["top1"] - t["RGB"]["top1"] for t in by_name])
  d3d_wins = sum(t["D3D"]["top1"] > t["RGB"]["top1"] for t in by_name)
  gaps = [results_table.gap_closed(table) for table in tables]
  gaps = [g for g in gaps if g == g]
  return dict(num_seeds=len(tables), models=models, d3d_minus_rgb_top1=difference,
              two_stream_minus_rgb_top1=two_stream,
              d3d_beats_rgb_seeds=int(d3d_wins),
              gap_closed=stats(gaps) if gaps else None)


def t_interval(values: Dict) -> Tuple[float, float]:
  """The 95% Student-t interval of the mean of `stats(...)`; (nan, nan) from one value.

  The exact two-sided quantile for n - 1 degrees of freedom: with 2 or 3 seeds "two standard
  errors" would call a lucky pair of seeds a result, and with 12 it is still 10% too narrow.
  """
  if not values["stderr"] == values["stderr"]:
    return float("nan"), float("nan")
  half_width = student_t.quantile(0.975, len(values["values"]) - 1) * values["stderr"]
  return values["mean"] - half_width, values["mean"] + half_width


def verdict(summary: Dict) -> str:
  """One sentence: is D3D - RGB larger than seed noise (a 95% t-interval that excludes 0)?"""
  d = summary["d3d_minus_rgb_top1"]
  n = summary["num_seeds"]
  wins = summary["d3d_beats_rgb_seeds"]
  head = (f"D3D minus RGB top-1: {100 * d['mean']:+.1f} points on average over {n} seeds "
          f"(standard deviation {100 * d['std']:.1f}, standard error {100 * d['stderr']:.1f}); "
          f"D3D is ahead in {wins} of {n} seeds.")
  if not d["stderr"] == d["stderr"]:
    return head + " One seed cannot show whether this exceeds seed noise."
  low, high = t_interval(d)
  interval = f" The 95% t-interval is [{100 * low:+.1f}, {100 * high:+.1f}] points"
  if low > 0:
    return head + interval + ": the gain is larger than seed noise."
  if high < 0:
    return head + interval + ": D3D is worse than the RGB baseline by more than seed noise."
  return head + interval + ": it includes 0, so the difference is not shown to exceed seed noise."
