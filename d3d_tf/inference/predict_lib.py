"""Classifies video files with an exported SavedModel or a `.keras` model: top-k per video or
per sliding window.

Frames are decoded with PyAV and resized to the records' short side (as the converter stores
them), clips are placed as in evaluation (`builders.eval_clip_indices`) and preprocessed by the
one shared function (`serving.preprocess`), in the SavedModel's graph or here for `.keras`.
Clip length, stride, crop and labels are the model's (`ClipGeometry`, stored in the `.keras`
file or the export); arguments override them where that is meaningful.
"""

import dataclasses
import json
import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from d3d_tf.models import model_files
from d3d_tf import video
from d3d_tf.data import builders
from d3d_tf.data import label_map as label_map_lib
from d3d_tf.evaluation import metrics
from d3d_tf.inference import runtimes
from d3d_tf.models import clip_geometry as geometry_lib
from d3d_tf.serving import preprocess
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
  import keras  # pylint: disable=g-import-not-at-top
  import d3d_tf.models  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
  try:
    model = keras.saving.load_model(model_path, compile=False)
  except Exception as e:  # pylint: disable=broad-except  (any load failure is one line)
    raise PredictError(f"Cannot load model {model_path!r}: {e}") from None
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


def predict_video(predictor: Predictor, path: str, *, num_clips: int = 4,
                  short_side: Optional[int] = 256, window_seconds: Optional[float] = None,
                  k: int = 5) -> Dict:
  """{"video", "top_k"} for the whole video, plus "windows" with `window_seconds`.

  Raises:
    PredictError: the video cannot be read.
  """
  try:
    frames, fps = video_io.read_video(path, short_side=short_side)
  except video_io.VideoReadError as e:
    raise PredictError(f"Cannot read video {e}") from None
  result = {"video": path, "num_frames": int(len(frames)), "fps": fps,
            "top_k": classify_frames(predictor, frames, num_clips, k)}
  if window_seconds:
    step = max(int(round(window_seconds * fps)), 1)
    windows = []
    for start in range(0, len(frames), step):
      chunk = frames[start:start + step]
      windows.append({"start_seconds": start / fps, "end_seconds": (start + len(chunk)) / fps,
                      "top_k": classify_frames(predictor, chunk, 1, k)})
    result["windows"] = windows
  return result


def format_result(result: Dict) -> str:
  """Human-readable lines: the video, its top-k, then one line per window."""
  lines = [f"{result['video']} ({result['num_frames']} frames, {result['fps']:.2f} fps)"]
  lines += [f"  {p['score']:.4f}  {p['label']}" for p in result["top_k"]]
  for w in result.get("windows", []):
    best = ", ".join(f"{p['label']} {p['score']:.3f}" for p in w["top_k"])
    lines.append(f"  [{w['start_seconds']:7.2f}s - {w['end_seconds']:7.2f}s]  {best}")
  return "\n".join(lines)
