"""What an extraction works through: one `Job` per video file or converted record.

`list_videos` reads `--videos` (a folder searched recursively, a glob, or a text file of
paths), `output_names` mirrors the input tree into the output dir (two videos that would write
one .npz are an error naming both), and a job's windows are decoded only when it runs, so
listing Kinetics costs no decoding. `job_of_task` rebuilds a job from its JSON-able `task`,
which is what a Beam worker receives.
"""

import dataclasses
import glob
import os
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from d3d_tf import video
from d3d_tf.inference import features_config
from d3d_tf.video import stream
from d3d_tf.video import video_io

_GLOB_CHARS = "*?["


@dataclasses.dataclass
class Job:
  """One video to extract: its name in the manifest, its .npz, and its windows (lazily).

  `task` says the same in JSON-able form ({"video": path} or {"record": file, "index": i},
  with "name" and "output"): what a Beam worker gets, to rebuild the job with `job_of_task`.
  """
  name: str
  output: str
  # -> (fps, windows, DecodeReport filled once the windows are exhausted, or None).
  windows: Callable[[], Tuple[float, Iterator[stream.Window], Optional[video_io.DecodeReport]]]
  task: Dict = dataclasses.field(default_factory=dict)


def _is_video(path: str) -> bool:
  name = os.path.basename(path)
  return name.lower().endswith(video.VIDEO_EXTENSIONS) and not name.startswith(".")


def list_videos(spec: str) -> Tuple[str, List[str]]:
  """(input root, video paths) of `--videos`: a folder (recursive), a glob, a text file of
  paths, or one video. Outputs mirror the tree under the root.

  Raises:
    FileNotFoundError: nothing at `spec`.
    ValueError: no video found there.
  """
  if os.path.isdir(spec):
    root = spec
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(spec) for f in files
                   if _is_video(f))
  elif any(c in spec for c in _GLOB_CHARS):
    fixed = spec[:min(spec.index(c) for c in _GLOB_CHARS if c in spec)]
    root = fixed if fixed.endswith(os.sep) else os.path.dirname(fixed)
    paths = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
  elif os.path.isfile(spec) and not _is_video(spec):
    with open(spec, encoding="utf-8") as f:
      listed = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    base = os.path.dirname(os.path.abspath(spec))
    paths = [p if os.path.isabs(p) else os.path.join(base, p) for p in listed]
    root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else base
  elif os.path.isfile(spec):
    root, paths = os.path.dirname(spec), [spec]
  else:
    raise FileNotFoundError(f"--videos={spec!r} does not exist (give a folder, a glob or a "
                            "text file of paths).")
  if not paths:
    raise ValueError(f"--videos={spec!r} holds no video file (extensions: "
                     f"{' '.join(video.VIDEO_EXTENSIONS)}).")
  return root or ".", paths


def output_names(root: str, paths: List[str]) -> List[str]:
  """Each video's .npz path relative to the output folder; two that collide are an error."""
  names, seen = [], {}
  for path in paths:
    name = os.path.splitext(os.path.relpath(path, root))[0] + ".npz"
    if name in seen:
      raise ValueError(f"{seen[name]} and {path} would both write {name}; rename one of them "
                       "(or extract them in separate runs).")
    seen[name] = path
    names.append(name)
  return names


def _video_job(config: features_config.FeaturesConfig, geometry, name: str, output: str,
               path: str) -> Job:
  def windows():
    fps = config.fps or video_io.probe_video(path)["fps"]
    report = video_io.DecodeReport()
    return fps, stream.iter_windows(
        path, geometry.num_frames, geometry.stride, config.window_stride or None,
        short_side=config.short_side or None, fps=config.fps or None, report=report), report
  return Job(name, output, windows, dict(name=name, output=output, video=path))


def video_jobs(config: features_config.FeaturesConfig, geometry) -> List[Job]:
  root, paths = list_videos(config.videos)
  return [_video_job(config, geometry, os.path.relpath(path, root),
                     os.path.join(config.output_dir, name), path)
          for path, name in zip(paths, output_names(root, paths))]


def _record_windows(config: features_config.FeaturesConfig, geometry, serialized: bytes):
  from d3d_tf.data import records  # pylint: disable=g-import-not-at-top
  from d3d_tf.serving import preprocess  # pylint: disable=g-import-not-at-top
  context, sequence = records.parse_sequence_example(serialized, with_flow=False)
  frames = preprocess.decode_jpeg_video(sequence[records.RGB_JPEG]).numpy()
  fps = float(context[records.FPS].numpy())
  return fps, stream.windows_of_frames(frames, fps, geometry.num_frames, geometry.stride,
                                       config.window_stride or None), None


def job_of_task(config: features_config.FeaturesConfig, geometry, task: Dict) -> Job:
  """The `Job` a `Job.task` describes (a record is read again from its file)."""
  if "video" in task:
    return _video_job(config, geometry, task["name"], task["output"], task["video"])

  def windows():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    dataset = tf.data.TFRecordDataset(task["record"]).skip(task["index"]).take(1)
    return _record_windows(config, geometry, next(dataset.as_numpy_iterator()))
  return Job(task["name"], task["output"], windows, dict(task))


def record_jobs(config: features_config.FeaturesConfig, geometry) -> List[Job]:
  """One job per record of `--records`, named by its video id; frames decoded from its JPEGs."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from d3d_tf.data import records  # pylint: disable=g-import-not-at-top
  files = records.glob_files(config.records)
  if not files:
    raise FileNotFoundError(f"--records={config.records!r} matches no file.")
  jobs, seen = [], {}
  for file in files:
    for index, serialized in enumerate(tf.data.TFRecordDataset(file).as_numpy_iterator()):
      context, _ = records.parse_sequence_example(serialized, with_flow=False)
      video_id = context[records.VIDEO_ID].numpy().decode("utf-8") or f"{file}:{index}"
      name = os.path.normpath(video_id.lstrip("/")) + ".npz"
      if name in seen:
        raise ValueError(f"records {seen[name]} and {file}:{index} both hold video "
                         f"{video_id!r}; their features would collide.")
      seen[name] = f"{file}:{index}"

      output = os.path.join(config.output_dir, name)
      jobs.append(Job(video_id, output,
                      lambda serialized=serialized: _record_windows(config, geometry,
                                                                    serialized),
                      dict(name=video_id, output=output, record=file, index=index)))
  return jobs
