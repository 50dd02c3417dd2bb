"""Classifies video files with an exported SavedModel or a `.keras` model: top-k per video or
per sliding window.

Frames are decoded with PyAV in chunks (`video.stream`), so memory is bounded by a few clips
or windows however long the video is; they are resized to the records' short side (as the
converter stores them), clips are placed as in evaluation (`builders.eval_clip_indices`) and preprocessed by the
one shared function (`serving.preprocess`), in the SavedModel's graph or here for `.keras`.
Clip length, stride, crop and labels are the model's (`ClipGeometry`, stored in the `.keras`
file or the export); arguments override them where that is meaningful.
"""

import csv
import dataclasses
import io
import json
import os
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from d3d_tf import video
from d3d_tf.common import defaults
from d3d_tf.data import builders
from d3d_tf.data import label_map as label_map_lib
from d3d_tf.evaluation import metrics
from d3d_tf.inference import runtimes
from d3d_tf.inference.predict_config import PredictConfig
from d3d_tf.models import clip_geometry as geometry_lib
from d3d_tf.models import model_files
from d3d_tf.serving import preprocess
from d3d_tf.video import stream
from d3d_tf.video import video_io

VIDEO_EXTENSIONS = video.VIDEO_EXTENSIONS


class PredictError(Exception):
  """A user-facing failure (missing model, no label map, unreadable video): one line."""


@dataclasses.dataclass
class Predictor:
  """`logits_fn(uint8 [B, T, H, W, 3]) -> float32 [B, C]`, the class names and the clip shape.

  `notes` are the overrides of the model's geometry, for the CLI to echo.
  """
  logits_fn: Callable[[np.ndarray], np.ndarray]
  labels: List[str]
  num_frames: int = 16
  stride: int = 1
  notes: List[str] = dataclasses.field(default_factory=list)


def _saved_model_dir(path: str) -> Optional[str]:
  """The SavedModel directory: `path` itself, or its highest numeric version (TF Serving)."""
  if os.path.isfile(os.path.join(path, "saved_model.pb")):
    return path
  versions = [d for d in os.listdir(path) if d.isdigit()
              and os.path.isfile(os.path.join(path, d, "saved_model.pb"))]
  return os.path.join(path, max(versions, key=int)) if versions else None


def _export_geometry(directory: str, loaded) -> Optional[geometry_lib.ClipGeometry]:
  """The geometry an export serves: in its graph, else (older exports) its metadata's frames."""
  text = loaded.clip_geometry.numpy().decode("utf-8") if hasattr(loaded, "clip_geometry") else ""
  if text:
    return geometry_lib.ClipGeometry.from_dict(json.loads(text))
  metadata = os.path.join(directory, "assets.extra", "d3d_export.json")
  if os.path.isfile(metadata):
    with open(metadata, encoding="utf-8") as f:
      meta = json.load(f)
    return geometry_lib.ClipGeometry(num_frames=meta["num_frames"], crop_size=meta["crop_size"],
                                     crop_fraction=meta["crop_fraction"])
  return None


def _load_saved_model(directory: str, label_map: Optional[str], overrides) -> Predictor:
  loaded = tf.saved_model.load(directory)
  serve = loaded.signatures["serving_default"]
  if label_map:
    labels = label_map_lib.read_label_map(label_map)
  elif hasattr(loaded, "labels"):
    labels = [s.decode("utf-8") for s in loaded.labels.numpy()]
  else:
    raise PredictError(f"SavedModel {directory!r} has no labels; pass --label_map.")
  geometry = _export_geometry(directory, loaded)
  for name in ("crop_size", "crop_fraction"):  # The graph has them baked in.
    given = overrides[name]
    if given is not None and (geometry is None or given != getattr(geometry, name)):
      raise PredictError(f"--{name} is baked into the SavedModel {directory!r}; leave it out, "
                         f"or re-export with d3d_tf.export --{name}={given}.")
  values, notes = geometry_lib.resolve(
      geometry, {"num_frames": overrides["num_frames"], "stride": overrides["stride"]},
      directory, required=("num_frames",))
  return Predictor(lambda x: serve(frames=tf.constant(x))["logits"].numpy(), labels,
                   values["num_frames"], values["stride"], notes)


def load_predictor(model_path: str, label_map: Optional[str] = None,
                   crop_size: Optional[int] = None, crop_fraction: Optional[float] = None,
                   num_frames: Optional[int] = None, stride: Optional[int] = None) -> Predictor:
  """Loads a SavedModel export (labels baked in), an ONNX or LiteRT export, or a `.keras` file.

  The geometry arguments left None are the model's; a `.keras` file without stored geometry
  needs `num_frames` and `crop_size`. Labels: `label_map`, else the model's, else the
  label_map.txt beside a `.keras` file.

  Raises:
    PredictError: a missing model, labels or geometry, or an override that cannot apply.
  """
  overrides = {"num_frames": num_frames, "stride": stride, "crop_size": crop_size,
               "crop_fraction": crop_fraction}
  if not os.path.exists(model_path):
    raise PredictError(f"Model {model_path!r} does not exist.")
  try:
    if runtimes.is_portable(model_path):
      return _load_portable(model_path, label_map, overrides)
    if os.path.isdir(model_path):
      directory = _saved_model_dir(model_path)
      if directory is None:
        raise PredictError(f"{model_path!r} is neither a SavedModel nor a directory of versions.")
      return _load_saved_model(directory, label_map, overrides)
    return _load_keras(model_path, label_map, overrides)
  except (FileNotFoundError, ValueError) as e:
    raise PredictError(str(e)) from None


def _load_portable(model_path: str, label_map: Optional[str], overrides) -> Predictor:
  """An ONNX or LiteRT export: its clip shape is fixed, frames are cropped to uint8 here."""
  from d3d_tf.serving import portable  # pylint: disable=g-import-not-at-top
  loaded = runtimes.load(model_path)
  geometry = geometry_lib.ClipGeometry.from_dict(loaded.geometry)
  if geometry.modality != "rgb":
    raise PredictError(f"{model_path!r} is a {geometry.modality} model; predict reads RGB.")
  for name in ("num_frames", "crop_size", "crop_fraction"):  # Fixed by the file's graph.
    given = overrides[name]
    if given is not None and given != getattr(geometry, name):
      raise PredictError(f"--{name} is fixed in {model_path!r} ({getattr(geometry, name)}); "
                         f"leave it out, or export again with --{name}={given}.")
  values, notes = geometry_lib.resolve(geometry, {"stride": overrides["stride"]}, model_path)
  labels = label_map_lib.read_label_map(label_map) if label_map else loaded.labels
  if len(labels) != len(loaded.labels):
    raise PredictError(f"{label_map} lists {len(labels)} classes; {model_path!r} outputs "
                       f"{len(loaded.labels)}.")

  def logits_fn(frames):
    clips = portable.crop_clips_uint8(frames, geometry.crop_size, geometry.crop_fraction)
    return loaded.logits(clips.numpy())

  return Predictor(logits_fn, labels, geometry.num_frames, values["stride"], notes)


def _load_keras(model_path: str, label_map: Optional[str], overrides) -> Predictor:
  try:
    model = model_files.load_keras(model_path, "model")
  except (ValueError, FileNotFoundError) as e:
    raise PredictError(str(e)) from None
  geometry = geometry_lib.geometry_of(model)
  labels, labels_from = model_files.resolve_labels(label_map, geometry, model_path)
  if len(labels) != model.output_shape[-1]:
    raise PredictError(f"{labels_from} lists {len(labels)} classes; the model outputs "
                       f"{model.output_shape[-1]}.")
  if model.input_shape[-1] != 3:
    raise PredictError(f"{model_path!r} is not an RGB model (it takes "
                       f"{model.input_shape[-1]} input channels).")
  values, notes = geometry_lib.resolve(geometry, overrides, model_path)
  crop_size, crop_fraction = values["crop_size"], values["crop_fraction"]

  @tf.function(input_signature=[tf.TensorSpec([None, None, None, None, 3], tf.uint8)])
  def logits_fn(frames):
    return model(preprocess.preprocess_frames(frames, crop_size, crop_fraction),
                 training=False)

  return Predictor(lambda x: logits_fn(tf.constant(x)).numpy(), labels, values["num_frames"],
                   values["stride"], notes)


def list_videos(path: str) -> List[str]:
  """`[path]` for a file; for a folder, its video files (by extension), sorted."""
  if os.path.isdir(path):
    return sorted(os.path.join(path, f) for f in os.listdir(path)
                  if f.lower().endswith(VIDEO_EXTENSIONS) and not f.startswith("."))
  return [path]


def clip_indices(num_frames: int, clip_length: int, num_clips: int,
                 stride: int = 1) -> np.ndarray:
  """[K, T] frame indices of K evenly spaced clips, exactly as evaluation places them."""
  config = builders.ClipConfig(num_frames=clip_length, num_clips=num_clips, stride=stride)
  return builders.eval_clip_indices(num_frames, config).numpy()


def top_k(probabilities: np.ndarray, labels: Sequence[str], k: int = 5) -> List[Dict]:
  order = np.argsort(-probabilities, kind="stable")[:min(k, len(labels))]
  return [{"label": labels[i], "index": int(i), "score": float(probabilities[i])} for i in order]


def classify_frames(predictor: Predictor, frames: np.ndarray, num_clips: int,
                    k: int = 5) -> List[Dict]:
  """Top-k of frames [N, H, W, 3]: K clips' logits averaged, then softmax."""
  idx = clip_indices(len(frames), predictor.num_frames, num_clips, predictor.stride)
  logits = predictor.logits_fn(frames[idx]).mean(axis=0)
  return top_k(metrics.softmax(logits), predictor.labels, k)


def _read_error(error: video_io.VideoReadError) -> PredictError:
  return PredictError(f"Cannot read video {error}")


def video_fps(path: str) -> float:
  """The video's frame rate, read from its header; PredictError if it cannot be read."""
  try:
    return float(video_io.probe_video(path)["fps"])
  except video_io.VideoReadError as e:
    raise _read_error(e) from None


def classify_spread_clips(predictor: Predictor, path: str, num_clips: int,
                          short_side: Optional[int] = None
                          ) -> Tuple[np.ndarray, int, float, video_io.DecodeReport]:
  """(mean logits of `num_clips` clips spread over the video, its frames, its fps, how
  completely it decoded).

  The clips are placed as evaluation places them over the whole video, so the video is read
  twice: once to count its frames (decoding, not converting), once keeping only the frames
  the clips use. Memory: the clips, whatever the video's length.
  """
  try:
    num_frames, fps, report = stream.scan(path)
    idx = clip_indices(num_frames, predictor.num_frames, num_clips, predictor.stride)
    clips = stream.read_frames_at(path, idx, short_side=short_side)
  except video_io.VideoReadError as e:
    raise _read_error(e) from None
  # One clip at a time: a full-size S3D-G's activations for 4 clips of 64 x 224 px would hold
  # ~0.7 GB more than one's, for nothing (the clips are averaged anyway).
  logits = np.concatenate([predictor.logits_fn(clips[i:i + 1]) for i in range(len(clips))])
  return logits.mean(axis=0), num_frames, fps, report


def iter_window_predictions(predictor: Predictor, path: str, *,
                            window_frames: Optional[int] = None,
                            window_stride: Optional[int] = None,
                            short_side: Optional[int] = None, partial_last: bool = False,
                            batch_size: int = 1, k: int = 5) -> Iterator[Dict]:
  """Per-window predictions, as the windows are decoded: memory is one batch of windows.

  Args:
    window_frames: frames per window; None: the model's clip span (num_frames x stride), whose
      frames are the clip. A longer window gets one clip, placed in it as evaluation places a
      single clip (`clip_indices`).
    window_stride: frames between window starts; None: `window_frames` (back to back).
    partial_last: also classify the video's tail that no whole window covers.
    batch_size: windows per forward pass; 1 (default) keeps a full-size model's activations
      to one clip's, larger batches are faster for small models.

  Yields:
    {"start_seconds", "end_seconds", "top_k", "logits" (float32 [C])} per window, in order.

  Raises:
    PredictError: the video cannot be read.
  """
  span = predictor.num_frames * predictor.stride
  window_frames = window_frames or span
  step = predictor.stride if window_frames == span else 1
  count = predictor.num_frames if window_frames == span else window_frames
  windows = stream.iter_windows(path, count, step, window_stride, short_side=short_side,
                                partial_last=partial_last)
  batch = []

  def flush():
    clips = []
    for window in batch:
      frames = window.frames
      if window_frames != span:  # One clip of the window's frames.
        frames = frames[clip_indices(len(frames), predictor.num_frames, 1,
                                     predictor.stride)[0]]
      elif len(frames) < predictor.num_frames:  # A cut-short tail, already strided.
        frames = frames[clip_indices(len(frames), predictor.num_frames, 1)[0]]
      clips.append(frames)
    logits = predictor.logits_fn(np.stack(clips))
    for window, row in zip(batch, logits):
      yield {"start_seconds": window.start_seconds, "end_seconds": window.end_seconds,
             "top_k": top_k(metrics.softmax(row), predictor.labels, k),
             "logits": np.asarray(row, np.float32)}
    batch.clear()

  try:
    for window in windows:
      batch.append(window)
      if len(batch) >= batch_size:
        yield from flush()
  except video_io.VideoReadError as e:
    raise _read_error(e) from None
  if batch:
    yield from flush()


def predict_video(predictor: Predictor, path: str, *, num_clips: int = 4,
                  short_side: Optional[int] = defaults.SHORT_SIDE,
                  window_seconds: Optional[float] = None, k: int = 5) -> Dict:
  """{"video", "top_k"} for the whole video, plus "windows" with `window_seconds`, plus
  "warning" when the video decoded only in part (the prediction covers the frames that did).

  Frames are decoded in chunks (`video.stream`): memory does not grow with the video's
  length. `top_k` averages `num_clips` clips spread over the video; each window of
  `window_seconds` (back to back, the last one cut short by the video's end) gets one clip,
  and "windows_top_k" is the top-k of the mean of the windows' logits.

  Raises:
    PredictError: the video cannot be read.
  """
  logits, num_frames, fps, report = classify_spread_clips(predictor, path, num_clips,
                                                          short_side)
  result = {"video": path, "num_frames": int(num_frames), "fps": fps,
            "top_k": top_k(metrics.softmax(logits), predictor.labels, k)}
  if report.frames_lost:
    result["warning"] = (f"{report.describe()}; predicted from the frames that decoded "
                         "(the file may be truncated or damaged)")
  if window_seconds:
    step = max(int(round(window_seconds * fps)), 1)
    windows = list(iter_window_predictions(predictor, path, window_frames=step,
                                           short_side=short_side, partial_last=True, k=k))
    mean = np.mean([w.pop("logits") for w in windows], axis=0)
    result["windows"] = windows
    result["windows_top_k"] = top_k(metrics.softmax(mean), predictor.labels, k)
  return result


WINDOW_CSV_HEADER = "video,start_seconds,end_seconds,labels,scores"


def window_line(video_path: str, prediction: Dict, fmt: str = "jsonl") -> str:
  """One window's prediction as a JSON line ("jsonl") or a CSV row ("csv", labels and scores
  joined by '|'), for writing as each window is computed."""
  if fmt == "jsonl":
    return json.dumps({"video": video_path, "start_seconds": prediction["start_seconds"],
                       "end_seconds": prediction["end_seconds"],
                       "labels": [p["label"] for p in prediction["top_k"]],
                       "scores": [round(p["score"], 6) for p in prediction["top_k"]]})
  if fmt == "csv":
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([
        video_path, f"{prediction['start_seconds']:.6f}", f"{prediction['end_seconds']:.6f}",
        "|".join(p["label"] for p in prediction["top_k"]),
        "|".join(f"{p['score']:.6f}" for p in prediction["top_k"])])
    return out.getvalue()
  raise ValueError(f"fmt must be 'jsonl' or 'csv'; received {fmt!r}.")


def load_from_config(config: PredictConfig) -> Predictor:
  """`load_predictor` with `config`'s model, labels and geometry overrides.

  Raises:
    PredictError: a flag out of its rules, or as `load_predictor`.
  """
  try:
    config.validate()
  except ValueError as e:
    raise PredictError(str(e)) from None
  return load_predictor(config.model, config.label_map, crop_size=config.crop_size,
                        crop_fraction=config.crop_fraction, num_frames=config.num_frames,
                        stride=config.stride)


def predict_with_config(predictor: Predictor, path: str, config: PredictConfig) -> Dict:
  """`predict_video` of `path` with `config`'s clips, short side, windows and k."""
  return predict_video(predictor, path, num_clips=config.num_clips,
                       short_side=config.short_side or None,
                       window_seconds=config.sliding_window, k=config.top_k)


def format_result(result: Dict) -> str:
  """Human-readable lines: the video, its top-k, then one line per window."""
  if "num_windows" in result:  # Streamed window by window (`timeline.result`).
    head = (f"{result['video']} ({result['num_windows']} windows over "
            f"{result['seconds']:.1f} s; mean of the window logits)")
    lines = [head] + [f"  {p['score']:.4f}  {p['label']}" for p in result["top_k"]]
    if "plot" in result:
      lines.append(f"  timeline: {result['plot']}")
    return "\n".join(lines)
  lines = [f"{result['video']} ({result['num_frames']} frames, {result['fps']:.2f} fps)"]
  if "warning" in result:
    lines.append(f"  warning: {result['warning']}")
  lines += [f"  {p['score']:.4f}  {p['label']}" for p in result["top_k"]]
  for w in result.get("windows", []):
    best = ", ".join(f"{p['label']} {p['score']:.3f}" for p in w["top_k"])
    lines.append(f"  [{w['start_seconds']:7.2f}s - {w['end_seconds']:7.2f}s]  {best}")
  return "\n".join(lines)
