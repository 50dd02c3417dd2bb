"""Features of every window of many videos, one .npz per video, resumable.

A decoding thread reads videos (`video.stream`, in bounded memory) or converted records, cuts
each into the model's windows and preprocesses them; the main thread runs the cut model
(`feature_model`) on batches that may mix windows of several videos, so decoding overlaps with
the network. A video's .npz is written (to a temporary name, then renamed) once all its
windows are computed: a run killed at any point loses only the videos in flight, and a rerun
skips every video whose .npz exists. Videos that give no window (unreadable, empty, shorter
than one window) are listed in failures.csv and the run goes on.

Output per video, `<output_dir>/<its path relative to the input folder>.npz`:
  features       float32 (or float16) [num_windows, D], or [num_windows, T', D] with keep_time
  start_seconds  float64 [num_windows]: time of each window's first frame
  end_seconds    float64 [num_windows]: time its span ends
  fps            float64 scalar: the rate windows were cut at (the source's, or --fps)
  model, endpoint  str scalars
"""

import csv
import dataclasses
import io
import os
import queue
import threading
import zipfile
from typing import Dict, List, Optional, Tuple

import numpy as np

from d3d_tf.common import defaults
from d3d_tf.common import progress
from d3d_tf.inference import feature_model
from d3d_tf.inference import features_config
from d3d_tf.inference.feature_jobs import Job, record_jobs, video_jobs
from d3d_tf.video import video_io

MANIFEST = "manifest.csv"
FAILURES = "failures.csv"
def write_npz(path: str, arrays: Dict[str, np.ndarray]) -> None:
  """An .npz with fixed zip timestamps (same inputs, same bytes), written atomically."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  temporary = f"{path}.tmp"
  with zipfile.ZipFile(temporary, "w", zipfile.ZIP_STORED) as archive:
    for key, value in arrays.items():
      buffer = io.BytesIO()
      np.lib.format.write_array(buffer, np.asarray(value), allow_pickle=False)
      archive.writestr(zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0)),
                       buffer.getvalue())
  os.replace(temporary, path)


def _write_csv(path: str, header: List[str], rows: List[List]) -> None:
  temporary = f"{path}.tmp"
  with open(temporary, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)
  os.replace(temporary, path)


def write_tables(output_dir: str, jobs: List[Job], manifest: Dict[int, List],
                 failures: Dict[int, str]) -> None:
  """manifest.csv (one row per job index) and failures.csv, in the jobs' order."""
  _write_csv(os.path.join(output_dir, MANIFEST), ["video", "windows", "seconds", "status"],
             [manifest[i] for i in sorted(manifest)])
  _write_csv(os.path.join(output_dir, FAILURES), ["video", "reason"],
             [[jobs[i].name, failures[i]] for i in sorted(failures)])


def existing_row(job: Job) -> Optional[List]:
  """The manifest row of a job whose .npz a previous run wrote, or None."""
  if not os.path.isfile(job.output):
    return None
  with np.load(job.output) as stored:
    ends = stored["end_seconds"]
    return [job.name, len(ends), float(ends[-1]), "existing"]


def npz_arrays(features: List[np.ndarray], starts: List[float], ends: List[float], fps: float,
               model: feature_model.FeatureModel, dtype: str) -> Dict[str, np.ndarray]:
  """What a video's .npz holds, in its order (the bytes depend on it)."""
  return {"features": np.stack(features).astype(np.dtype(dtype)),
          "start_seconds": np.asarray(starts, np.float64),
          "end_seconds": np.asarray(ends, np.float64),
          "fps": np.float64(fps), "model": np.str_(model.model_path),
          "endpoint": np.str_(model.endpoint)}


NO_WINDOW = "no whole window: the video is shorter than one window"


def extract_job(job: Job, model: feature_model.FeatureModel,
                config: features_config.FeaturesConfig) -> Tuple[List, Optional[str], str]:
  """One video on its own (the Beam runner's unit): its .npz written.

  Returns:
    (manifest row, failure reason or None, how the video decoded only in part or "").
  """
  starts, ends, features, batch = [], [], [], []

  def run_batch():
    if batch:
      features.extend(model.features_fn(np.stack(batch)))
      batch.clear()
  try:
    fps, windows, report = job.windows()
    for window in windows:
      starts.append(window.start_seconds)
      ends.append(window.end_seconds)
      batch.append(feature_model.preprocess_window(window.frames, model.geometry, config.views))
      if len(batch) >= config.batch_size:
        run_batch()
    run_batch()
  except video_io.VideoReadError as e:
    return [job.name, 0, 0.0, "failed"], e.reason, ""
  if not features:
    return [job.name, 0, 0.0, "failed"], NO_WINDOW, ""
  lost = report.describe() if report is not None and report.frames_lost else ""
  write_npz(job.output, npz_arrays(features, starts, ends, fps, model, config.dtype))
  return [job.name, len(features), ends[-1], "partial" if lost else "done"], None, lost


_END = object()


def _produce(jobs: List[Job], model: feature_model.FeatureModel, views: int,
             out: queue.Queue, stop: threading.Event) -> None:
  """Decoding thread: ("window", job, Window, clip), ("done", job, fps), ("failed", job,
  reason) and finally _END (or ("crash", exception))."""
  try:
    for index, job in enumerate(jobs):
      if stop.is_set():
        break
      try:
        fps, windows, report = job.windows()
        for window in windows:
          clip = feature_model.preprocess_window(window.frames, model.geometry, views)
          out.put(("window", index, window, clip))
          if stop.is_set():
            break
        lost = report.describe() if report is not None and report.frames_lost else ""
        out.put(("done", index, fps, lost))
      except video_io.VideoReadError as e:
        out.put(("failed", index, e.reason))
    out.put(_END)
  except BaseException as e:  # pylint: disable=broad-except  (re-raised by the consumer)
    out.put(("crash", e))


@dataclasses.dataclass
class _Pending:
  starts: List[float] = dataclasses.field(default_factory=list)
  ends: List[float] = dataclasses.field(default_factory=list)
  features: List[Optional[np.ndarray]] = dataclasses.field(default_factory=list)
  fps: Optional[float] = None
  lost: str = ""  # How the video decoded only in part, if it did.


def keep_flags(config: features_config.FeaturesConfig) -> None:
  """Creates the output dir with the run's flags.txt, once its inputs and model are known good:
  a relaunch is compared with it (`features_config.prepare_output_dir`)."""
  os.makedirs(config.output_dir, exist_ok=True)
  with open(os.path.join(config.output_dir, defaults.FLAGS_FILE), "w", encoding="utf-8") as f:
    f.write(config.to_flagfile())


def extract(config: features_config.FeaturesConfig,
            check_output_dir: bool = True) -> Dict[str, int]:
  """Runs an extraction; returns counts {"done", "existing", "failed", "windows"}.

  With `config.runner == "beam"` the work is a Beam pipeline (`features_beam`), same files.
  The output dir keeps the run's flags.txt; with `check_output_dir`, a relaunch with other
  settings is refused and `--overwrite` starts afresh (`features_config.prepare_output_dir`;
  `d3d_tf.extract_features` does it before importing TensorFlow).

  Raises:
    FileNotFoundError, ValueError: no input, no model, an endpoint the model lacks
      (`config_lib.ChangedSettings`, a ValueError, for a relaunch with other settings).
  """
  config.validate()
  if check_output_dir:
    for line in features_config.prepare_output_dir(config):
      print(line, flush=True)
  if config.runner == "beam":
    from d3d_tf.inference import features_beam  # pylint: disable=g-import-not-at-top
    return features_beam.extract(config)
  model = feature_model.load(config.model, config.endpoint, config.keep_time)
  jobs = (video_jobs if config.videos else record_jobs)(config, model.geometry)
  keep_flags(config)
  manifest: Dict[int, List] = {}
  failures: Dict[int, str] = {}
  todo = []
  for index, job in enumerate(jobs):
    row = existing_row(job)
    if row:
      manifest[index] = row
    else:
      todo.append(index)
  counts = {"done": 0, "existing": len(manifest), "failed": 0, "windows": 0}
  pending: Dict[int, _Pending] = {}
  batch: List[Tuple[int, int, np.ndarray]] = []
  bar = progress.ProgressBar(total=len(todo), unit="videos", desc="extracting",
                             disable=config.quiet)

  def fail(index: int, reason: str) -> None:
    failures[index] = reason
    manifest[index] = [jobs[index].name, 0, 0.0, "failed"]
    counts["failed"] += 1

  def finish(index: int) -> None:
    state = pending.pop(index)
    job = jobs[index]
    if not state.features:
      fail(index, NO_WINDOW)
    else:
      write_npz(job.output, npz_arrays(state.features, state.starts, state.ends, state.fps,
                                       model, config.dtype))
      manifest[index] = [job.name, len(state.features), state.ends[-1],
                         "partial" if state.lost else "done"]
      if state.lost:  # Kept: its windows are whole, but the file is damaged or cut short.
        bar.write(f"warning: {job.name}: {state.lost}; features of the frames that decoded")
      counts["done"] += 1
      counts["windows"] += len(state.features)
    bar.update(note=f"{counts['windows']} windows, {counts['failed']} failed")

  def run_batch() -> None:
    if not batch:
      return
    features = model.features_fn(np.stack([clip for _, _, clip in batch]))
    touched = set()
    for (index, slot, _), feature in zip(batch, features):
      pending[index].features[slot] = feature
      touched.add(index)
    batch.clear()
    for index in sorted(touched):
      if _complete(pending.get(index)):
        finish(index)

  items: queue.Queue = queue.Queue(maxsize=config.batch_size)
  stop = threading.Event()
  producer = threading.Thread(target=_produce, daemon=True, args=(
      [jobs[i] for i in todo], model, config.views, items, stop))
  producer.start()
  try:
    while True:
      item = items.get()
      if item is _END:
        break
      if item[0] == "crash":
        raise item[1]
      kind, index = item[0], todo[item[1]]
      state = pending.setdefault(index, _Pending())
      if kind == "window":
        _, _, window, clip = item
        state.starts.append(window.start_seconds)
        state.ends.append(window.end_seconds)
        state.features.append(None)
        batch.append((index, len(state.features) - 1, clip))
        if len(batch) >= config.batch_size:
          run_batch()
      elif kind == "failed":
        pending.pop(index)
        fail(index, item[2])
        bar.update(note=f"{counts['windows']} windows, {counts['failed']} failed")
      else:
        state.fps, state.lost = item[2], item[3]
        if _complete(state):
          finish(index)
    run_batch()
  finally:
    stop.set()
    bar.close()
    write_tables(config.output_dir, jobs, manifest, failures)
  return counts


def _complete(state: Optional[_Pending]) -> bool:
  """Every window computed and the video read to its end (its fps arrives last)."""
  return (state is not None and state.fps is not None
          and all(f is not None for f in state.features))
