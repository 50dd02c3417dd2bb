"""The report's pictures: training curves per stream, the accuracy/cost trade-off, and D3D's
gain and the motion probe per benchmark variant."""

import os
from typing import Dict, List, Sequence

import numpy as np

from d3d_tf.reporting import seeds as seeds_lib
from d3d_tf.reporting import variants as variants_lib

STREAM_COLOURS = {"flow": "tab:green", "rgb": "tab:blue", "d3d": "tab:red"}


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _save(plt, fig, path: str) -> str:
  """Writes `fig` to `path` (its folder made if needed) and frees it."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def curves_figure(runs: Dict[str, Sequence[Dict[str, List]]]):
  """Label loss and validation top-1 (%) against step; `runs` maps stream -> one curve dict per
  seed (see `curves.model_curves`). Each seed is a thin line, their mean a thick one."""
  plt = _pyplot()
  # Keras logs a running mean that restarts each epoch (one checkpoint interval), hence steps.
  panels = (("train/batch_label_loss", 1.0, "label loss (cross-entropy)",
             "training label loss\n(Keras' running mean, restarting each epoch)"),
            ("validation/video_top1", 100.0, "top-1 %",
             "validation top-1 during training\n(--eval_clips per video)"))
  fig, axes = plt.subplots(1, len(panels), figsize=(11, 4.2))
  for ax, (tag, scale, ylabel, title) in zip(axes, panels):
    for stream, seeds in runs.items():
      colour = STREAM_COLOURS.get(stream)
      series = [np.array(s[tag], dtype=float) for s in seeds if s.get(tag)]
      single = len(series) == 1
      for values in series:
        ax.plot(values[:, 0], scale * values[:, 1], color=colour, alpha=0.3, linewidth=1)
      length = min((len(v) for v in series), default=0)
      if length:
        mean = np.mean([v[:length, 1] for v in series], axis=0)
        # One run is its own mean: name the stream alone rather than "mean of 1".
        ax.plot(series[0][:length, 0], scale * mean, color=colour, linewidth=2.5,
                label=stream if single else f"{stream} (mean of {len(series)})")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if scale == 100.0:
      ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=10)
    ax.tick_params(which="both", top=True, right=True)
    ax.grid(alpha=0.3)
    ax.legend()
  fig.tight_layout()
  return fig


def training_curves(path: str, runs: Dict[str, Sequence[Dict[str, List]]]) -> str:
  """Writes `curves_figure(runs)` to `path`."""
  plt = _pyplot()
  return _save(plt, fig=curves_figure(runs), path=path)


def _offsets(points: Sequence[Dict]) -> List[float]:
  """Multiplicative x nudges (log axis) for points that would sit on one another."""
  factors = []
  for i, p in enumerate(points):
    close = [q for q in points[:i] if abs(np.log10(q["seconds"] / p["seconds"])) < 0.03
             and abs(q["top1"] - p["top1"]) < 0.015]
    factors.append(1.0 + 0.06 * len(close))
  return factors


def accuracy_cost(path: str, points: Sequence[Dict], title: str) -> str:
  """Top-1 against inference seconds per video; `points`: model, seconds, top1, top1_err."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.5, 4.5))
  for p, nudge in zip(points, _offsets(points)):
    marker = "o" if not p.get("needs_flow") else "s"
    ax.errorbar(p["seconds"] * nudge, 100 * p["top1"], yerr=100 * p.get("top1_err", 0.0),
                fmt=marker, capsize=3, markersize=8, label=p["model"])
  # A legend, not labels by the points; coinciding points (two-stream and D3D + flow) are
  # nudged right so both markers stay visible.
  ax.legend(fontsize=9, loc="best")
  ax.set_xscale("log")
  from matplotlib import ticker  # pylint: disable=g-import-not-at-top
  decimals = ticker.FormatStrFormatter("%g")
  ax.xaxis.set_major_formatter(decimals)
  ax.xaxis.set_minor_formatter(decimals)
  ax.set_xlabel("inference seconds per video, incl. optical flow (log)")
  ax.set_ylabel("top-1 %")
  ax.set_title(title)
  ax.grid(alpha=0.3, which="both")
  ax.tick_params(which="both", top=True, right=True)
  fig.tight_layout()
  return _save(plt, fig, path)


PROBE_COLOURS = {"RGB": "tab:blue", "D3D": "tab:red", "flow": "tab:green", "random": "tab:gray"}


def variant_gains(path: str, rows: Sequence[Dict]) -> str:
  """Per variant (`variants.collect` rows, top to bottom): D3D - RGB top-1 with its 95%
  t-interval, and the probe's Mixed_3c EPE per network (sd bars where seeds were probed)."""
  plt = _pyplot()
  n = len(rows)
  fig, (gain_ax, probe_ax) = plt.subplots(1, 2, figsize=(12, 1.2 + 0.55 * n), sharey=True,
                                          gridspec_kw=dict(width_ratios=(1.1, 1)))
  ys = np.arange(n)[::-1]
  for y, row in zip(ys, rows):
    mean = 100 * row["difference"]["mean"]
    low, high = seeds_lib.t_interval(row["difference"])
    beyond = low > 0 or high < 0
    colour = "tab:red" if beyond else "tab:gray"
    if low == low:
      gain_ax.errorbar(mean, y, xerr=[[mean - 100 * low], [100 * high - mean]], fmt="o",
                       color=colour, capsize=4, markersize=7)
    else:
      gain_ax.plot(mean, y, "o", color=colour, markersize=7, fillstyle="none")
    for value in row["difference"]["values"]:
      gain_ax.plot(100 * value, y, "|", color=colour, alpha=0.5, markersize=9)
  gain_ax.axvline(0, color="black", linewidth=1)
  gain_ax.set_yticks(ys)
  gain_ax.set_yticklabels([f"{r['name']} ({len(r['difference']['values'])})" for r in rows],
                          fontsize=9)
  gain_ax.set_xlabel("D3D - RGB top-1, points\n(dot: mean; bar: 95% t-interval; ticks: seeds)")
  gain_ax.set_title("Does D3D beat RGB? (red: beyond seed noise)", fontsize=10)
  offsets = dict(zip(PROBE_COLOURS, (0.18, 0.06, -0.06, -0.18)))
  labelled = set()  # One legend entry per network.
  for y, row in zip(ys, rows):
    for arm, colour in PROBE_COLOURS.items():
      point = variants_lib.epe_summary(row["probe"].get(arm))
      if point is not None:
        probe_ax.errorbar(point[0], y + offsets[arm], xerr=point[1], fmt="o", color=colour,
                          capsize=3, markersize=5, label=None if arm in labelled else arm)
        labelled.add(arm)
  probe_ax.set_xlabel("motion probe: held-out EPE at Mixed_3c, pixels\n"
                      "(lower: more motion in the features)")
  probe_ax.set_title("Is motion in the features? (bars: sd over probed seeds)", fontsize=10)
  if labelled:
    probe_ax.legend(fontsize=8, loc="best")
  else:
    probe_ax.text(0.5, 0.5, "no variant was probed", ha="center", transform=probe_ax.transAxes)
  for ax in (gain_ax, probe_ax):
    ax.grid(alpha=0.3)
    ax.tick_params(which="both", top=True, right=True)
  fig.tight_layout()
  return _save(plt, fig, path)
