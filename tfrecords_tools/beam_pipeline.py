"""The converter as an Apache Beam pipeline, for datasets that outgrow one machine.

It writes what `convert_lib.convert` (the local runner) writes, byte for byte, because it runs
the same code at every step that touches the bytes; only the scheduling is Beam's:

1. List and plan (launcher): `convert_lib.prepare` checks the settings, writes label_map.txt,
   plans the shards and drops those already complete. The videos still to convert go to
   `.converter/beam_tasks.jsonl`, which the pipeline reads: a file, unlike `beam.Create` of the
   tasks, keeps 240,000 Kinetics videos out of the job graph. One worker reads it (through
   `d3d_tf.common.file_system`, so any URL TensorFlow reads works, ram:// included) and `Reshuffle`
   spreads the lines.
2. Encode (`EncodeVideoFn`): `convert_lib.encode_video`, the local runner's per-video function.
   A bad video goes to the dead-letter output `failed`; it never fails the pipeline.
3. Shard (`WriteShardFn`): converted and failed videos are grouped by their planned shard and
   written in plan order by `convert_lib.write_shard`, atomically (temporary file, manifest,
   rename). A rerun after a crash therefore redoes only the shards that are missing.
4. Summarize (launcher): `convert_lib.summarize` turns the shard manifests, which hold the
   dead-letter videos, into failures.csv and summary.json.

Progress is Beam metrics in the namespace `NAMESPACE` (converted, failed, frame_pairs, shards):
the engine's UI shows them while the job runs, and `convert` prints them at the end.

Every path must be one the workers and the launcher both see: a local disk with DirectRunner;
on a cluster a gs:// URL (any file system `tf.io.gfile` implements) or a shared mount (NFS,
Filestore, s3fs). Workers need this package installed (Dataflow: `--setup_file=./setup.py`);
see WORKSPACE.md.
"""

import json
import os
import shlex
import sys
import time
from typing import Callable, Dict, Iterable, List, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from d3d_tf.common import beam_counters
from d3d_tf.common import file_system as fs
from tfrecords_tools import convert_lib
from tfrecords_tools import layouts
from tfrecords_tools import shard_plan
from tfrecords_tools import worker_pool

NAMESPACE = "d3d_tf.convert"
TASKS_FILE = "beam_tasks.jsonl"
COUNTERS = ("converted", "failed", "frame_pairs", "shards")


def task_lines(todo: Sequence[shard_plan.ShardPlan]) -> Iterable[str]:
  """One JSON line per video still to convert: its shard, its place in it, and the video."""
  for plan in todo:
    for position, item in enumerate(plan.items):
      yield json.dumps(dict(shard=[plan.split, plan.index, plan.count], position=position,
                            path=item.path, label=item.label, split=item.split,
                            video_id=item.video_id), sort_keys=True)


def read_lines(path: str) -> Iterable[str]:
  """The lines of a text file at a local path or URL, without their newlines."""
  with fs.open(path, encoding="utf-8") as f:
    for line in f:
      yield line.rstrip("\n")


class EncodeVideoFn(beam.DoFn):
  """A task line -> (shard key, (position, item, EncodedVideo)), or a Failure on `FAILED`.

  `encode` runs in a child process (`worker_pool.IsolatedRunner`), as in the local runner: a
  decoder that segfaults fails its video, not the bundle, which the engine would retry on the
  same video until the job fails.
  """

  FAILED = "failed"

  def __init__(self, options: convert_lib.EncodeOptions, class_names: Sequence[str],
               encode: Callable = convert_lib.encode_video):
    super().__init__()
    self._options = options
    self._label_index = {name: index for index, name in enumerate(class_names)}
    self._encode = encode
    self._counters = {name: Metrics.counter(NAMESPACE, name) for name in COUNTERS}
    self._runner = None

  def setup(self):
    self._runner = worker_pool.IsolatedRunner(self._encode, convert_lib.crashed)

  def teardown(self):
    if self._runner is not None:
      self._runner.close()

  def process(self, line: str):
    task = json.loads(line)
    item = layouts.VideoItem(task["path"], task["label"], task["split"], task["video_id"])
    result = self._runner(convert_lib.Task(item, self._label_index[item.label], self._options))
    value = (tuple(task["shard"]), (task["position"], item, result))
    if isinstance(result, convert_lib.Failure):
      self._counters["failed"].inc()
      yield beam.pvalue.TaggedOutput(self.FAILED, value)
    else:
      self._counters["converted"].inc()
      self._counters["frame_pairs"].inc(len(result.flow_x or []))
      yield value


class WriteShardFn(beam.DoFn):
  """(shard key, {"converted": [...], "failed": [...]}) -> the shard written, its name out."""

  def __init__(self, output_dir: str, options: convert_lib.EncodeOptions):
    super().__init__()
    self._output_dir = output_dir
    self._options = options
    self._shards = Metrics.counter(NAMESPACE, "shards")

  def process(self, keyed):
    (split, index, count), grouped = keyed
    entries = sorted([*grouped["converted"], *grouped[EncodeVideoFn.FAILED]],
                     key=lambda entry: entry[0])
    plan = shard_plan.ShardPlan(split, index, count, tuple(item for _, item, _ in entries))
    state_dir = os.path.join(self._output_dir, convert_lib.STATE_DIR)
    convert_lib.write_shard(plan, iter([result for _, _, result in entries]), self._output_dir,
                            state_dir, self._options)
    self._shards.inc()
    yield plan.name


def build_pipeline(pipeline: beam.Pipeline, tasks_path: str, output_dir: str,
                   options: convert_lib.EncodeOptions, class_names: Sequence[str],
                   encode: Callable = convert_lib.encode_video):
  """Adds the conversion to `pipeline`; returns the PCollection of shard names written."""
  encoded = (
      pipeline
      | "TasksFile" >> beam.Create([tasks_path])
      | "ReadTasks" >> beam.FlatMap(read_lines)
      # Each video is minutes of flow: spread them over workers, never fused into one.
      | "Spread" >> beam.Reshuffle()
      | "Encode" >> beam.ParDo(EncodeVideoFn(options, class_names, encode)).with_outputs(
          EncodeVideoFn.FAILED, main="converted"))
  return (
      {"converted": encoded.converted, EncodeVideoFn.FAILED: encoded[EncodeVideoFn.FAILED]}
      | "GroupByShard" >> beam.CoGroupByKey()
      | "WriteShards" >> beam.ParDo(WriteShardFn(output_dir, options)))


def _counters(result) -> Dict[str, int]:
  return beam_counters.counters(result, NAMESPACE, COUNTERS)


def convert(dataset: layouts.Dataset, output_dir: str,
            options: convert_lib.EncodeOptions = convert_lib.EncodeOptions(),
            num_shards: int = 0, pipeline_args: Sequence[str] = (),
            encode: Callable = convert_lib.encode_video) -> Dict:
  """`convert_lib.convert`, with encoding and shard writing run as a Beam pipeline.

  Args:
    dataset: the videos, as a layout loader returns them.
    output_dir: where shards, label_map.txt, failures.csv and summary.json go.
    options: how each video is encoded (an `EncodeOptions`, or the command's `BuildConfig`).
    num_shards: shards per split; 0 picks about `convert_lib.VIDEOS_PER_SHARD` a shard.
    pipeline_args: Beam pipeline options, e.g. ["--runner=DirectRunner",
      "--direct_num_workers=2"]; none runs on DirectRunner.
    encode: the per-video function; tests swap in one that crashes. Module-level, for the
      child process to import.

  Returns:
    The summary also written to summary.json, with `beam_metrics` added when a pipeline ran.

  Raises:
    convert_lib.SettingsMismatchError: `output_dir` holds a conversion made with other
      settings.
  """
  start = time.perf_counter()
  options = options.encoding()
  state_dir, plans, todo = convert_lib.prepare(dataset, output_dir, options, num_shards)
  tasks_path = os.path.join(state_dir, TASKS_FILE)
  with fs.open(tasks_path, "w", encoding="utf-8") as f:
    f.writelines(line + "\n" for line in task_lines(todo))
  metrics = None
  if todo:
    pipeline = beam.Pipeline(options=PipelineOptions(list(pipeline_args)))
    build_pipeline(pipeline, tasks_path, output_dir, options, dataset.class_names, encode)
    result = pipeline.run()
    result.wait_until_finish()
    metrics = _counters(result)
    print("beam metrics (" + NAMESPACE + "): " +
          ", ".join(f"{name}={value}" for name, value in metrics.items()), file=sys.stderr)
  to_encode = sum(len(plan.items) for plan in todo)
  summary = convert_lib.summarize(output_dir, state_dir, dataset, plans, todo, options,
                                  time.perf_counter() - start, to_encode)
  return summary if metrics is None else dict(summary, beam_metrics=metrics)


def parse_pipeline_options(text: str) -> List[str]:
  """`--beam_pipeline_options` (one shell-quoted string) as argv-style pipeline args.

  Workers log at WARNING unless the options set `--default_sdk_harness_log_level`: at INFO,
  DirectRunner's harness prints some twenty lines per worker process.
  """
  args = shlex.split(text or "")
  if not any(arg.startswith("--default_sdk_harness_log_level") for arg in args):
    args.append("--default_sdk_harness_log_level=WARNING")
  return args
