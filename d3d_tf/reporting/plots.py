"""The report's pictures: training curves per stream and the accuracy/cost trade-off."""

import os
from typing import Dict, List, Sequence

import numpy as np

STREAM_COLOURS = {"flow": "tab:green", "rgb": "tab:blue", "d3d": "tab:red"}


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


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
  fig = curves_figure(runs)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


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
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
