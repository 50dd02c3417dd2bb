"""Predictions along a video of any length: per-window top-k written as they are computed, the
video's result from the mean of the window logits, and a timeline picture.

Frames are decoded in chunks (`video.stream`) and each window is classified once its frames
are in, so memory holds one batch of windows whatever the video's length; what is kept per
window is its time span and class probabilities (float16), enough for the video-level result
and the picture of an hours-long video.
"""

import dataclasses
import os
from typing import IO, List, Optional, Sequence

import numpy as np

from d3d_tf.evaluation import metrics
from d3d_tf.inference import predict_lib


@dataclasses.dataclass
class Timeline:
  """The windows of one video: spans in seconds and class probabilities [windows, classes]."""
  video: str
  starts: np.ndarray
  ends: np.ndarray
  probabilities: np.ndarray
  mean_logits: np.ndarray


def output_format(path: str) -> str:
  """"jsonl" or "csv", from the windows file's extension; ValueError naming the flag else."""
  ext = os.path.splitext(path)[1].lower()
  if ext in (".jsonl", ".json"):
    return "jsonl"
  if ext == ".csv":
    return "csv"
  raise ValueError(f"--windows_output={path!r} must end in .jsonl (JSON lines) or .csv.")


def predict_timeline(predictor: predict_lib.Predictor, path: str, *,
                     window_seconds: Optional[float] = None,
                     stride_seconds: Optional[float] = None,
                     short_side: Optional[int] = None, k: int = 5,
                     sink: Optional[IO[str]] = None, fmt: str = "jsonl",
                     batch_size: int = 1) -> Timeline:
  """Classifies every window of `path` as it is decoded; writes each window's top-k to `sink`.

  Args:
    window_seconds: window length; None: the model's clip (num_frames x stride frames).
    stride_seconds: time between window starts; None: the window length (back to back);
      smaller values overlap.
    sink: an open text file that gets one line per window (`predict_lib.window_line`),
      flushed as each is computed, so a long run can be followed and nothing is lost.

  Raises:
    PredictError: the video cannot be read, or holds no whole window.
  """
  fps = predict_lib.video_fps(path)
  window_frames = None
  if window_seconds:
    window_frames = max(int(round(window_seconds * fps)), 1)
  span = window_frames or predictor.num_frames * predictor.stride
  window_stride = max(int(round(stride_seconds * fps)), 1) if stride_seconds else span
  starts: List[float] = []
  ends: List[float] = []
  probabilities: List[np.ndarray] = []
  total = None
  for window in predict_lib.iter_window_predictions(
      predictor, path, window_frames=window_frames, window_stride=window_stride,
      short_side=short_side, batch_size=batch_size, k=k):
    logits = window.pop("logits")
    total = logits.astype(np.float64) if total is None else total + logits
    starts.append(window["start_seconds"])
    ends.append(window["end_seconds"])
    probabilities.append(metrics.softmax(logits).astype(np.float16))
    if sink is not None:
      sink.write(predict_lib.window_line(path, window, fmt) + "\n")
      sink.flush()
  if total is None:
    raise predict_lib.PredictError(
        f"{path} is shorter than one window ({span} frames at {fps:.2f} fps): give a shorter "
        "--sliding_window, or leave --window_stride, --windows_output and --plot out.")
  return Timeline(path, np.asarray(starts), np.asarray(ends), np.stack(probabilities),
                  (total / len(starts)).astype(np.float32))


def result(timeline: Timeline, labels: Sequence[str], k: int = 5) -> dict:
  """The video-level result: top-k of the mean window logits, and the windows' count."""
  return {"video": timeline.video, "num_windows": int(len(timeline.starts)),
          "seconds": float(timeline.ends[-1]),
          "top_k": predict_lib.top_k(metrics.softmax(timeline.mean_logits), labels, k)}


def _clock(seconds: float, long: bool) -> str:
  seconds = int(round(seconds))
  if long:
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
  return f"{seconds // 60}:{seconds % 60:02d}"


def plot(timeline: Timeline, labels: Sequence[str], path: str, top: int = 5) -> str:
  """A PNG of the `top` classes' scores over time (the classes with the highest mean score),
  one line each, and a strip of the top-1 class per window beneath; readable for an hour."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  probs = timeline.probabilities.astype(np.float32)
  top = min(top, probs.shape[1])
  classes = np.argsort(-probs.mean(axis=0))[:top]
  mids = (timeline.starts + timeline.ends) / 2
  duration = float(timeline.ends[-1])
  fig, (ax, strip) = plt.subplots(2, 1, figsize=(12, 4.5), sharex=True,
                                  gridspec_kw={"height_ratios": [5, 1]})
  colors = plt.get_cmap("tab10")
  for i, c in enumerate(classes):
    ax.plot(mids, probs[:, c], color=colors(i % 10), linewidth=1.2, label=labels[c])
  ax.set_ylim(0, 1)
  ax.set_ylabel("score")
  ax.set_title(f"{os.path.basename(timeline.video)}: top classes over time "
               f"({len(mids)} windows)")
  ax.legend(loc="upper right", fontsize=8, ncol=min(top, 5))
  ax.grid(alpha=0.3)
  best = probs.argmax(axis=1)
  index = {c: i for i, c in enumerate(classes)}
  cells = np.array([colors(index[b] % 10) if b in index else (0.85, 0.85, 0.85, 1.0)
                    for b in best])[None]
  strip.imshow(cells, aspect="auto", extent=(timeline.starts[0], duration, 0, 1))
  strip.set_yticks([])
  strip.set_ylabel("top-1", rotation=0, ha="right", va="center")
  long = duration >= 3600
  ticks = ax.get_xticks()
  strip.set_xticks(ticks)
  strip.set_xticklabels([_clock(t, long) for t in ticks])
  strip.set_xlim(0, duration)
  strip.set_xlabel("time (h:mm:ss)" if long else "time (m:ss)")
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
