"""Videos to sharded TFRecords: the importable logic behind `build_tfrecords`.

Work is split so worker processes never import TensorFlow: a worker decodes one video, computes
its flow and returns encoded JPEG/PNG bytes (`encode_video`); the parent, which alone imports
TensorFlow (lazily), builds and writes the records (`convert`). Paths may be URLs (gs://):
every file goes through `d3d_tf.common.file_system`, and a worker imports TensorFlow only to copy a
video from a URL to a local temporary file for PyAV.

Crash safety comes from the shard plan being a pure function of the inputs: video -> shard
assignment and order depend only on video ids, each shard is written under `.converter/` and
renamed into place once complete (after its manifest), and a rerun skips shards whose manifest
lists exactly the videos planned for them. The plan is `shard_plan`, the crash-isolating pool
`worker_pool`, the CLIs' flag parsing `d3d_tf.common.cli`. `beam_pipeline` runs the same `prepare`,
`encode_video`, `write_shard` and `summarize` as an Apache Beam pipeline.
"""

import collections
import csv
import dataclasses
import json
import os
import sys
import time
from typing import (Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence,
                    Tuple, Union)

import cv2

from d3d_tf.common import defaults
from d3d_tf.common import file_system as fs
from d3d_tf.common import progress
from d3d_tf.data import label_map as label_map_lib
from d3d_tf.video import video_io
from tfrecords_tools import build_config
from tfrecords_tools import flow as flow_lib
from tfrecords_tools import layouts
from tfrecords_tools import shard_plan
from tfrecords_tools import worker_pool

# Re-exported: the CLIs and tests plan shards through this module.
VIDEOS_PER_SHARD = shard_plan.VIDEOS_PER_SHARD
ShardPlan = shard_plan.ShardPlan
plan_shards = shard_plan.plan_shards
shard_name = shard_plan.shard_name
STATE_DIR = ".converter"
LABEL_MAP_FILE = defaults.LABEL_MAP_FILE
FAILURES_FILE = defaults.FAILURES_FILE
SUMMARY_FILE = defaults.SUMMARY_FILE
# Re-exported: the encoding settings are declared with the command's flags.
EncodeOptions = build_config.EncodeOptions
FLOW_CHOICES = build_config.FLOW_CHOICES


class SettingsMismatchError(ValueError):
  """The output folder holds shards made with other settings; resuming would mix them."""


@dataclasses.dataclass
class EncodedVideo:
  """A worker's output for one video: everything a record needs, as plain bytes and numbers."""
  video_id: str
  label_index: int
  label_name: str
  fps: float
  height: int
  width: int
  rgb_jpegs: List[bytes]
  flow_x: Optional[List[bytes]]
  flow_y: Optional[List[bytes]]
  flow_seconds: float
  # Frames the decoder lost (within `max_lost_fraction`); 0 for a video that decoded whole.
  frames_lost: int = 0


@dataclasses.dataclass
class Failure:
  path: str
  reason: str


class Task(NamedTuple):
  item: layouts.VideoItem
  label_index: int
  options: EncodeOptions


# === Worker side: no TensorFlow ===


def encode_video(task: Task) -> Union[EncodedVideo, Failure]:
  """Decodes, resizes, computes flow and encodes one video; never raises, returns a Failure.

  OpenCV runs single-threaded here: processes give the parallelism, and one thread keeps the
  flow, hence the shards, identical whatever the number of workers.
  """
  item, label_index, options = task
  threads = cv2.getNumThreads()
  cv2.setNumThreads(1)
  try:
    with fs.local_copy(item.path) as path:  # PyAV reads local files only.
      frames, fps, report = video_io.decode_video(
          path, short_side=options.short_side or None, fps=options.fps or None,
          max_frames=options.max_frames or None)
    if report.lost_fraction > options.max_lost_fraction:
      return Failure(item.path, report.describe())
    quality = (cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality)
    jpegs = [flow_lib.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), quality)
             for f in frames]
    flow_x = flow_y = None
    seconds = 0.0
    if options.flow != "none":
      flow_x, flow_y, seconds = flow_lib.encode_flow(frames, options.flow, options.flow_bound,
                                                     options.flow_format,
                                                     options.flow_jpeg_quality)
    return EncodedVideo(
        video_id=item.video_id, label_index=label_index, label_name=item.label, fps=fps,
        height=int(frames.shape[1]), width=int(frames.shape[2]), rgb_jpegs=jpegs,
        flow_x=flow_x, flow_y=flow_y, flow_seconds=round(seconds, 6),
        frames_lost=report.frames_lost)
  except video_io.VideoReadError as e:
    return Failure(item.path, e.reason)
  except Exception as e:  # pylint: disable=broad-except
    # A bad video must not stop a run of thousands; its reason goes to failures.csv.
    return Failure(item.path, f"{type(e).__name__}: {e}")
  finally:
    cv2.setNumThreads(threads)


def crashed(task: Task) -> Failure:
  """The Failure of a task whose worker process died (a decoder crash)."""
  return Failure(task.item.path, "the decoder crashed (worker process died)")


def encode_in_order(tasks: Iterable[Task], workers: int,
                    encode: Callable = encode_video) -> Iterator[Union[EncodedVideo, Failure]]:
  """Yields `encode(task)` for each task, in task order, using `workers` processes.

  The crash-isolating pool is `worker_pool.run_in_order`: a video whose decoder kills its
  worker becomes a `Failure`, and the others go on. `encode` must be a module-level function.
  """
  return worker_pool.run_in_order(tasks, workers, encode, crashed)


# === Parent side: records and resume (the plan: `shard_plan`) ===


def _write_json(path: str, value) -> None:
  tmp = path + ".tmp"
  with fs.open(tmp, "w", encoding="utf-8") as f:
    json.dump(value, f, indent=2, sort_keys=True)
    f.write("\n")
  fs.replace(tmp, path)


# Settings added since the first release: an earlier run that does not record them made them so.
_ADDED_SETTINGS = {"flow_format": "png", "flow_jpeg_quality": 95,
                   "max_lost_fraction": video_io.MAX_LOST_FRACTION}


def _check_settings(state_dir: str, settings: Dict) -> None:
  """Records the settings on a first run; refuses to resume under different ones."""
  path = os.path.join(state_dir, "settings.json")
  if fs.exists(path):
    with fs.open(path, encoding="utf-8") as f:
      previous = {**_ADDED_SETTINGS, **json.load(f)}
    changed = sorted(key for key in set(previous) | set(settings)
                     if previous.get(key) != settings.get(key))
    if changed:
      details = ", ".join(f"{key}: {previous.get(key)!r} -> {settings.get(key)!r}"
                          for key in changed if key != "class_names")
      if "class_names" in changed:
        details = (details + ", " if details else "") + "the class list"
      raise SettingsMismatchError(
          f"--output_dir {os.path.dirname(state_dir)!r} holds shards made with other settings "
          f"({details}); use a new --output_dir, or rerun with the original flags.")
  else:
    _write_json(path, settings)


def _manifest_path(state_dir: str, plan: ShardPlan) -> str:
  return os.path.join(state_dir, plan.name + ".json")


def _is_finished(output_dir: str, state_dir: str, plan: ShardPlan) -> bool:
  manifest_path = _manifest_path(state_dir, plan)
  if not (fs.exists(os.path.join(output_dir, plan.name)) and fs.exists(manifest_path)):
    return False
  with fs.open(manifest_path, encoding="utf-8") as f:
    manifest = json.load(f)
  return manifest.get("video_ids") == [item.video_id for item in plan.items]


def _remove_stale_shards(output_dir: str, state_dir: str, plans: Sequence[ShardPlan]) -> None:
  """Deletes this converter's shards of the planned splits that the plan no longer names (the
  video list changed size), so a reader's glob never mixes two plans."""
  planned = {plan.name for plan in plans}
  splits = {plan.split for plan in plans}
  for name in sorted(fs.listdir(output_dir)):
    split = name.split("-")[0]
    if (split in splits and name.endswith(".tfrecord") and "-of-" in name
        and name not in planned):
      print(f"Removing {name}: not part of the current shard plan.", file=sys.stderr)
      fs.remove(os.path.join(output_dir, name))
      if fs.exists(os.path.join(state_dir, name + ".json")):
        fs.remove(os.path.join(state_dir, name + ".json"))


def _serialize(video: EncodedVideo, options: EncodeOptions) -> bytes:
  from d3d_tf.data import records  # pylint: disable=g-import-not-at-top
  example = records.make_sequence_example(
      video_id=video.video_id, label_index=video.label_index, label_name=video.label_name,
      fps=video.fps, height=video.height, width=video.width, rgb_jpegs=video.rgb_jpegs,
      flow_x=video.flow_x, flow_y=video.flow_y, flow_algorithm=options.flow,
      flow_bound=options.flow_bound, flow_format=options.flow_format,
      flow_seconds=video.flow_seconds if options.flow_timing else 0.0)
  # Deterministic: protobuf map order is otherwise unspecified, and shards must be reproducible.
  return example.SerializeToString(deterministic=True)


def write_shard(plan: ShardPlan, results: Iterator[Union[EncodedVideo, Failure]],
                output_dir: str, state_dir: str, options: EncodeOptions,
                on_video: Optional[Callable[[Union[EncodedVideo, Failure]], None]] = None) -> None:
  """Writes one shard from its videos' results, in plan order, under `.converter/`, then its
  manifest, then renames it into place: a shard is either complete or absent.

  Both runners write through here (the local one from its pool, the Beam one per grouped
  shard), so their shards and manifests are the same bytes. `on_video` sees each result.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  partial = os.path.join(state_dir, plan.name + ".partial")
  manifest = dict(shard=plan.name, video_ids=[item.video_id for item in plan.items],
                  converted=0, failures=[], frames=0, frame_pairs=0, flow_seconds=0.0,
                  partial_videos=[])
  with tf.io.TFRecordWriter(partial) as writer:
    for _ in plan.items:
      result = next(results)
      if isinstance(result, Failure):
        manifest["failures"].append([result.path, result.reason])
      else:
        writer.write(_serialize(result, options))
        manifest["converted"] += 1
        manifest["frames"] += len(result.rgb_jpegs)
        manifest["frame_pairs"] += len(result.flow_x or [])
        manifest["flow_seconds"] += result.flow_seconds
        if result.frames_lost:
          manifest["partial_videos"].append([result.video_id, result.frames_lost])
      if on_video is not None:
        on_video(result)
  fs.fsync(partial)
  _write_json(_manifest_path(state_dir, plan), manifest)
  fs.replace(partial, os.path.join(output_dir, plan.name))


def _write_failures(path: str, failures: Sequence[Sequence[str]]) -> None:
  tmp = path + ".tmp"
  with fs.open(tmp, "w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["path", "reason"])
    writer.writerows(failures)
  fs.replace(tmp, path)


def prepare(dataset: layouts.Dataset, output_dir: str, options: EncodeOptions,
            num_shards: int = 0) -> Tuple[str, List[ShardPlan], List[ShardPlan]]:
  """What every runner does before encoding: checks the settings against an earlier run's,
  writes `label_map.txt`, plans the shards and drops those already complete.

  Returns:
    (state_dir, every shard's plan, the plans of the shards still to write).

  Raises:
    SettingsMismatchError: `output_dir` holds a conversion made with other settings.
  """
  options = options.encoding()
  options.validate()
  state_dir = os.path.join(output_dir, STATE_DIR)
  fs.makedirs(state_dir)
  settings = dict(dataclasses.asdict(options), num_shards=num_shards,
                  class_names=list(dataset.class_names))
  _check_settings(state_dir, settings)
  label_map_lib.write_label_map(os.path.join(output_dir, LABEL_MAP_FILE), dataset.class_names)
  plans = plan_shards(dataset, num_shards)
  _remove_stale_shards(output_dir, state_dir, plans)
  todo = [plan for plan in plans if not _is_finished(output_dir, state_dir, plan)]
  if len(todo) < len(plans):
    print(f"Resuming: {len(plans) - len(todo)} of {len(plans)} shards are already complete.",
          file=sys.stderr)
  return state_dir, plans, todo


def convert(dataset: layouts.Dataset, output_dir: str, options: EncodeOptions = EncodeOptions(),
            num_shards: int = 0, workers: int = 1, show_progress: bool = True) -> Dict:
  """Converts `dataset` into `output_dir`; resumes a run that was interrupted.

  Writes `<split>-NNNNN-of-MMMMM.tfrecord` shards, `label_map.txt`, `failures.csv` and
  `summary.json`. Bad videos are skipped and listed, never raised.

  Returns:
    The summary dict also written to summary.json.

  Raises:
    SettingsMismatchError: `output_dir` holds a conversion made with other settings.
    ValueError: an option out of its range (the message names the flag).
  """
  start = time.perf_counter()
  options = options.encoding()  # A `BuildConfig` carries more than the records' settings.
  state_dir, plans, todo = prepare(dataset, output_dir, options, num_shards)
  label_index = {name: index for index, name in enumerate(dataset.class_names)}
  tasks = (Task(item, label_index[item.label], options) for plan in todo for item in plan.items)
  to_encode = sum(len(plan.items) for plan in todo)
  stream = None if show_progress else open(os.devnull, "w")
  bar = progress.ProgressBar(total=to_encode, unit="videos", desc="converting", stream=stream)
  failed = [0]

  def on_video(result):
    failed[0] += isinstance(result, Failure)
    bar.update(note=f"{failed[0]} failed")

  results = encode_in_order(tasks, workers)
  try:
    for plan in todo:
      write_shard(plan, results, output_dir, state_dir, options, on_video)
  finally:
    results.close()
    bar.close()
    if stream is not None:
      stream.close()
  return summarize(output_dir, state_dir, dataset, plans, todo, options,
                   time.perf_counter() - start, to_encode)


def _finished_manifests(output_dir: str, state_dir: str, plans: Sequence[ShardPlan]):
  """(manifest, planned) of this run's shards, then of other splits' finished shards in the
  folder (`--splits=val` after `--splits=train`), so the summary covers the whole folder."""
  planned_splits = {plan.split for plan in plans}
  names = [plan.name for plan in plans] + sorted(
      name for name in fs.listdir(output_dir)
      if name.endswith(".tfrecord") and "-of-" in name
      and name.split("-")[0] not in planned_splits
      and fs.exists(os.path.join(state_dir, name + ".json")))
  for name in names:
    with fs.open(os.path.join(state_dir, name + ".json"), encoding="utf-8") as f:
      yield json.load(f)


def summarize(output_dir: str, state_dir: str, dataset: layouts.Dataset,
              plans: Sequence[ShardPlan], todo: Sequence[ShardPlan], options: EncodeOptions,
              seconds: float, encoded: int) -> Dict:
  """Aggregates the shard manifests into failures.csv and summary.json (every runner)."""
  failures = [list(failure) for failure in dataset.failures]
  splits = {}
  totals = collections.Counter()
  rerun = {plan.name for plan in todo}
  for manifest in _finished_manifests(output_dir, state_dir, plans):
    failures.extend(manifest["failures"])
    split = splits.setdefault(manifest["shard"].split("-")[0], collections.Counter(shards=0))
    split.update(videos=len(manifest["video_ids"]), converted=manifest["converted"],
                 failed=len(manifest["failures"]), shards=1)
    totals.update(converted=manifest["converted"], video_failures=len(manifest["failures"]),
                  frames=manifest["frames"], frame_pairs=manifest["frame_pairs"], shards=1)
    totals["flow_seconds"] += manifest["flow_seconds"]
    # Manifests written before partial videos were counted have no such list.
    partial = manifest.get("partial_videos", [])
    totals.update(partial_videos=len(partial), frames_lost=sum(lost for _, lost in partial))
    if manifest["shard"] in rerun:
      totals.update(frame_pairs_this_run=manifest["frame_pairs"])
      totals["flow_seconds_this_run"] += manifest["flow_seconds"]
  _write_failures(os.path.join(output_dir, FAILURES_FILE), failures)
  summary = dict(
      converted=totals["converted"], failed=len(failures),
      failed_annotations=len(dataset.failures), failed_videos=totals["video_failures"],
      seconds=round(seconds, 3), videos_this_run=encoded,
      videos_per_second=round(encoded / seconds, 4) if seconds > 0 else 0.0,
      frame_pairs_per_second=(
          round(totals["frame_pairs_this_run"] / seconds, 4) if seconds > 0 else 0.0),
      flow=options.flow, flow_seconds_this_run=round(totals["flow_seconds_this_run"], 3),
      # Measured on this machine when each shard was written, resumed shards included.
      flow_seconds_per_video=(
          round(totals["flow_seconds"] / totals["converted"], 6) if totals["converted"] else 0.0),
      frames=totals["frames"], frame_pairs=totals["frame_pairs"],
      # Kept although their decoder lost frames (at most `max_lost_fraction` of each).
      partial_videos=totals["partial_videos"], frames_lost=totals["frames_lost"],
      shards=totals["shards"], resumed_shards=len(plans) - len(todo),
      num_classes=len(dataset.class_names), splits={k: dict(v) for k, v in splits.items()},
      options=dataclasses.asdict(options))
  _write_json(os.path.join(output_dir, SUMMARY_FILE), summary)
  return summary
