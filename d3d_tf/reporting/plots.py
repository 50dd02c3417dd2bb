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


def training_curves(path: str, runs: Dict[str, Sequence[Dict[str, List]]]) -> str:
  """Label loss and validation top-1 against step; `runs` maps stream -> one curve dict per
  seed (see `curves.model_curves`). Each seed is a thin line, their mean a thick one."""
  plt = _pyplot()
  # Keras logs a running mean that restarts each epoch (one checkpoint interval), hence steps.
  panels = (("train/batch_label_loss",
             "training label loss (cross-entropy;\nKeras' running mean, restarting each epoch)"),
            ("validation/video_top1", "validation top-1 during training (--eval_clips per video)"))
  fig, axes = plt.subplots(1, len(panels), figsize=(11, 4))
  for ax, (tag, title) in zip(axes, panels):
    for stream, seeds in runs.items():
      colour = STREAM_COLOURS.get(stream)
      series = [np.array(s[tag]) for s in seeds if s.get(tag)]
      for values in series:
        ax.plot(values[:, 0], values[:, 1], color=colour, alpha=0.3, linewidth=1)
      length = min((len(v) for v in series), default=0)
      if length:
        mean = np.mean([v[:length, 1] for v in series], axis=0)
        ax.plot(series[0][:length, 0], mean, color=colour, linewidth=2.5,
                label=f"{stream} (mean of {len(series)})")
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def accuracy_cost(path: str, points: Sequence[Dict], title: str) -> str:
  """Top-1 against inference seconds per video; `points`: model, seconds, top1, top1_err."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.5, 4.5))
  for p in points:
    marker = "o" if not p.get("needs_flow") else "s"
    ax.errorbar(p["seconds"], 100 * p["top1"], yerr=100 * p.get("top1_err", 0.0), fmt=marker,
                capsize=3, markersize=8, label=p["model"])
  # A legend, not labels by the points: models of similar cost and accuracy would overlap.
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
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
