"""`extract_features --runner=beam`: the extraction as an Apache Beam pipeline, for
collections that outgrow one machine (all of Kinetics).

It writes what the local runner (`features_lib.extract`) writes, the same .npz bytes, because
every step that touches them is the local runner's code; only the scheduling is Beam's:

1. List (launcher): the videos or records, their output names (collisions are an error), and
   the ones whose .npz a previous run wrote (skipped, listed as "existing"). The model is
   loaded once here too, so a missing model or a wrong endpoint fails in one line before any
   worker starts. The videos still to do go to `<output_dir>/.extract_features/tasks.jsonl`
   (a file, unlike `beam.Create` of the tasks, keeps a million videos out of the job graph);
   `Reshuffle` spreads its lines over the workers.
2. Extract (`ExtractVideoFn`): the model is loaded once per worker (`setup`), then each video's
   windows go through it in batches of --batch_size and its .npz is written atomically
   (`features_lib.extract_job`). A bad video is a result with its reason, never a failed
   bundle. Each result is one JSON line written by `WriteToText`.
3. Summarize (launcher): manifest.csv and failures.csv from the result lines, in the order
   the local runner writes them; the scratch folder is then removed.

A rerun after a crash redoes only the videos without an .npz. Progress is Beam metrics in
the namespace `NAMESPACE` (videos, windows, failed). Paths must be ones every worker and the
launcher see (a local disk with DirectRunner; a shared mount on a cluster), and workers need
this package installed.
"""

import glob
import json
import os
import shlex
import shutil
import sys
from typing import Dict, List

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from d3d_tf.common import beam_counters
from d3d_tf.inference import feature_jobs
from d3d_tf.inference import feature_model
from d3d_tf.inference import features_config
from d3d_tf.inference import features_lib

NAMESPACE = "d3d_tf.extract_features"
COUNTERS = ("videos", "windows", "failed")
SCRATCH_DIR = ".extract_features"
TASKS_FILE = "tasks.jsonl"
RESULTS_PREFIX = "results"


def read_lines(path: str):
  """The lines of a text file, without their newlines."""
  with open(path, encoding="utf-8") as f:
    for line in f:
      yield line.rstrip("\n")


class ExtractVideoFn(beam.DoFn):
  """A task line ({"index": i, "task": Job.task}) -> a result line: {"index", "row",
  "reason"} (reason None unless the video failed)."""

  def __init__(self, config: features_config.FeaturesConfig):
    super().__init__()
    self._config = config
    self._model = None
    self._counters = {name: Metrics.counter(NAMESPACE, name) for name in COUNTERS}

  def setup(self):
    config = self._config
    self._model = feature_model.load(config.model, config.endpoint, config.keep_time)

  def process(self, line: str):
    entry = json.loads(line)
    job = feature_jobs.job_of_task(self._config, self._model.geometry, entry["task"])
    row, reason, lost = features_lib.extract_job(job, self._model, self._config)
    if reason is None:
      self._counters["videos"].inc()
      self._counters["windows"].inc(row[1])
      if lost:
        print(f"warning: {job.name}: {lost}; features of the frames that decoded",
              file=sys.stderr)
    else:
      self._counters["failed"].inc()
    yield json.dumps(dict(index=entry["index"], row=row, reason=reason), sort_keys=True)


def build_pipeline(pipeline: beam.Pipeline, tasks_path: str, results_prefix: str,
                   config: features_config.FeaturesConfig):
  """Adds the extraction to `pipeline`: tasks file in, result lines under results_prefix."""
  return (
      pipeline
      | "TasksFile" >> beam.Create([tasks_path])
      | "ReadTasks" >> beam.FlatMap(read_lines)
      # A video is seconds to minutes of network: spread them, never fused into one worker.
      | "Spread" >> beam.Reshuffle()
      | "Extract" >> beam.ParDo(ExtractVideoFn(config))
      | "WriteResults" >> beam.io.WriteToText(results_prefix, file_name_suffix=".jsonl"))


def pipeline_args(text: str) -> List[str]:
  """`--beam_pipeline_options` as argv-style args; workers log at WARNING unless told."""
  args = shlex.split(text or "")
  if not any(arg.startswith("--default_sdk_harness_log_level") for arg in args):
    args.append("--default_sdk_harness_log_level=WARNING")
  return args


def _counters(result) -> Dict[str, int]:
  return beam_counters.counters(result, NAMESPACE, COUNTERS)


def extract(config: features_config.FeaturesConfig) -> Dict[str, int]:
  """`features_lib.extract` run as a Beam pipeline; the same files and counts.

  Raises:
    FileNotFoundError, ValueError: no input, no model, an endpoint the model lacks.
  """
  config.validate()
  model = feature_model.load(config.model, config.endpoint, config.keep_time)
  jobs = (feature_jobs.video_jobs if config.videos else feature_jobs.record_jobs)(
      config, model.geometry)
  features_lib.keep_flags(config)
  manifest: Dict[int, List] = {}
  failures: Dict[int, str] = {}
  todo = []
  for index, job in enumerate(jobs):
    row = features_lib.existing_row(job)
    if row:
      manifest[index] = row
    else:
      todo.append(index)
  counts = {"done": 0, "existing": len(manifest), "failed": 0, "windows": 0}
  if todo:
    scratch = os.path.join(config.output_dir, SCRATCH_DIR)
    shutil.rmtree(scratch, ignore_errors=True)  # Results of a killed run are stale.
    os.makedirs(scratch)
    tasks_path = os.path.join(scratch, TASKS_FILE)
    with open(tasks_path, "w", encoding="utf-8") as f:
      f.writelines(json.dumps(dict(index=i, task=jobs[i].task), sort_keys=True) + "\n"
                   for i in todo)
    prefix = os.path.join(scratch, RESULTS_PREFIX)
    pipeline = beam.Pipeline(options=PipelineOptions(pipeline_args(
        config.beam_pipeline_options)))
    build_pipeline(pipeline, tasks_path, prefix, config)
    result = pipeline.run()
    result.wait_until_finish()
    metrics = _counters(result)
    for path in sorted(glob.glob(prefix + "*.jsonl")):
      for line in read_lines(path):
        if line:
          entry = json.loads(line)
          manifest[entry["index"]] = entry["row"]
          if entry["reason"] is not None:
            failures[entry["index"]] = entry["reason"]
    missing = [jobs[i].name for i in todo if i not in manifest]
    if missing:
      raise RuntimeError(f"the pipeline returned no result for {len(missing)} videos (first: "
                         f"{missing[0]}); rerun to finish them.")
    for i in todo:
      if i in failures:
        counts["failed"] += 1
      else:
        counts["done"] += 1
        counts["windows"] += manifest[i][1]
    if not config.quiet:
      print("beam metrics (" + NAMESPACE + "): " +
            ", ".join(f"{name}={value}" for name, value in metrics.items()), file=sys.stderr)
  features_lib.write_tables(config.output_dir, jobs, manifest, failures)
  if todo:
    shutil.rmtree(os.path.join(config.output_dir, SCRATCH_DIR), ignore_errors=True)
  return counts
