"""End to end: an RGB + flow ensemble on tiny records; numbers checked against direct calls."""

import csv
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from d3d_tf.data import datasets
from d3d_tf.data import label_map as label_map_lib
from d3d_tf.data import records
from d3d_tf.evaluation import ensemble
from d3d_tf.evaluation import report
from d3d_tf.evaluation import evaluate_lib
from d3d_tf.models import S3DGBackbone, S3DGClassifier
from tests.data import records_fixture as rf

MOTIONS = ((2, 0), (0, 2), (-2, -2))


def _record(k):
  label = k % 3
  dx, dy = MOTIONS[label]
  frames = rf.textured_frames(10, 40, 48, dx, dy, seed=k)
  flow = np.zeros((9, 40, 48, 2), np.float32)
  flow[..., 0], flow[..., 1] = dx, dy
  q = records.quantize_flow(flow)
  return records.make_sequence_example(
      f"vid{k}", label, f"c{label}", 25.0, 40, 48, [rf.encode_jpeg(f) for f in frames],
      flow_x=[rf.encode_png(p[..., 0]) for p in q], flow_y=[rf.encode_png(p[..., 1]) for p in q],
      flow_algorithm="synthetic", flow_seconds=0.5 + k)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp("eval")
  files = str(root / "val.tfrecord")
  rf.write_records(files, [_record(k) for k in range(3)])
  label_map_lib.write_label_map(str(root / "label_map.txt"), ["c0", "c1", "c2"])
  paths = []
  for name, channels in (("rgb", 3), ("flow", 2)):
    model = S3DGClassifier(S3DGBackbone(input_channels=channels, depth_multiplier=0.125,
                                        final_endpoint="Mixed_3c"), 3)
    rng = np.random.default_rng(channels)
    head = model.get_layer("Logits_Conv2d_0c_1x1")
    head.kernel.assign(rng.normal(0, 50.0, head.kernel.shape).astype("float32"))
    head.bias.assign(rng.normal(0, 1.0, head.bias.shape).astype("float32"))
    paths.append(str(root / f"{name}.keras"))
    model.save(paths[-1])
  return dict(root=root, files=files, paths=paths)


@pytest.mark.slow
def test_ensemble_report_matches_direct_computation(setup, monkeypatch):
  out_dir = str(setup["root"] / "report")
  written = {}
  real_write = report.write_confusion_png
  monkeypatch.setattr(report, "write_confusion_png", lambda path, matrix, names, title="": (
      written.__setitem__(os.path.basename(path), (np.array(matrix), title)),
      real_write(path, matrix, names, title))[1])
  config = evaluate_lib.EvalConfig(models=setup["paths"], eval_files=setup["files"],
                                   output_dir=out_dir, fusion_weights=(1.0, 1.5), num_clips=2,
                                   num_frames=8, crop_size=32)
  result = evaluate_lib.evaluate(config)
  # Direct: the same views through each model, logits averaged per video, softmax fused.
  members = ensemble.load_members(setup["paths"])
  ds = datasets.eval_dataset(setup["files"], num_clips=2, num_frames=8, crop_size=32,
                             with_flow=True)
  per_model, labels = [[], []], []
  for features, label in ds:
    per_model[0].append(members[0].model(features["rgb"]).numpy().mean(0))
    per_model[1].append(members[1].model(features["flow"]).numpy().mean(0))
    labels.append(int(label[0]))
  probs = [ensemble.softmax(np.stack(p)) for p in per_model]
  fused = (probs[0] + 1.5 * probs[1]) / 2.5
  top1 = float(np.mean(fused.argmax(1) == np.array(labels)))
  rows = result["rows"]
  assert [r["inputs"] for r in rows] == ["RGB", "flow", "RGB + flow"]
  assert rows[2]["top1"] == pytest.approx(top1)
  assert rows[0]["top1"] == pytest.approx(float(np.mean(probs[0].argmax(1) == labels)))
  assert rows[2]["top5"] == 1.0  # 3 classes.
  assert rows[0]["flow_seconds_per_video"] is None
  assert rows[1]["flow_seconds_per_video"] == pytest.approx(np.mean([0.5, 1.5, 2.5]))
  assert all(r["clips_per_second"] > 0 for r in rows)
  with open(os.path.join(out_dir, "report.json")) as f:
    saved = json.load(f)
  assert saved["fusion_weights"] == [1.0, 1.5] and len(saved["confusion_matrix"]) == 3
  assert sum(map(sum, saved["confusion_matrix"])) == 3
  with open(os.path.join(out_dir, "predictions.csv")) as f:
    csv_rows = list(csv.DictReader(f))
  assert [r["video_id"] for r in csv_rows] == ["vid0", "vid1", "vid2"]
  assert [int(r["prediction_index"]) for r in csv_rows] == fused.argmax(1).tolist()
  with open(os.path.join(out_dir, "confusion_matrix.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  # One image per member besides the ensemble's, each from that member's own predictions.
  assert sorted(written) == ["confusion_matrix.png", "confusion_matrix_flow.png",
                             "confusion_matrix_rgb.png"]
  for name, p in (("rgb", probs[0]), ("flow", probs[1])):
    matrix, title = written[f"confusion_matrix_{name}.png"]
    assert matrix.argmax(1).tolist() != [] and np.trace(matrix) == np.sum(p.argmax(1) == labels)
    assert matrix[labels, p.argmax(1)].min() >= 1 and setup["files"] in title


@pytest.mark.slow
def test_cli_full_video_mode_prints_table(setup):
  out_dir = str(setup["root"] / "full")
  proc = subprocess.run(
      [sys.executable, "-m", "d3d_tf.evaluate", f"--models={setup['paths'][0]}",
       f"--eval_files={setup['files']}", f"--output_dir={out_dir}", "--num_clips=0",
       "--num_frames=8", "--crop_size=32"],
      capture_output=True, text=True, timeout=180,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "rgb.keras" in proc.stdout and "clips/s" in proc.stdout
  with open(os.path.join(out_dir, "report.json")) as f:
    report = json.load(f)
  assert report["protocol"]["num_clips"] == 0 and report["summary"]["num_videos"] == 3
  missing = subprocess.run(
      [sys.executable, "-m", "d3d_tf.evaluate", "--models=/nonexistent.keras",
       f"--eval_files={setup['files']}", f"--output_dir={out_dir}"],
      capture_output=True, text=True, timeout=120)
  assert missing.returncode == 2
  assert missing.stderr.strip().splitlines()[-1].startswith("evaluate: ")


def test_flow_seconds_fall_back_to_the_converter_summary(tmp_path):
  """Records converted without --flow_timing carry 0; the summary's measured mean is used, and
  without a summary the cost is unknown (None), never 0."""
  timed, untimed = _record(0), _record(1)
  untimed.context.feature[records.FLOW_SECONDS].float_list.value[:] = [0.0]
  rf.write_records(str(tmp_path / "val-00000-of-00001.tfrecord"), [timed, untimed])
  pattern = str(tmp_path / "val-*.tfrecord")
  assert evaluate_lib.flow_seconds_per_video(pattern) == {"vid0": 0.5, "vid1": None}
  (tmp_path / "summary.json").write_text(json.dumps({"flow_seconds_per_video": 0.25}))
  assert evaluate_lib.flow_seconds_per_video(pattern) == {"vid0": 0.5, "vid1": 0.25}
  # Seconds given by the caller win over the records' and the summary's.
  assert evaluate_lib.flow_seconds_per_video(pattern, 2.0) == {"vid0": 2.0, "vid1": 2.0}


def test_the_converter_summary_is_read_through_the_file_system_layer():
  """A URL (here TensorFlow's ram://, as gs:// would be) is read, not taken for a missing file."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  untimed = _record(1)
  untimed.context.feature[records.FLOW_SECONDS].float_list.value[:] = [0.0]
  folder = "ram://flow_cost_summary"
  tf.io.gfile.makedirs(folder)
  rf.write_records(folder + "/val-00000-of-00001.tfrecord", [untimed])
  pattern = folder + "/val-*.tfrecord"
  assert evaluate_lib.flow_seconds_per_video(pattern) == {"vid1": None}
  with tf.io.gfile.GFile(folder + "/summary.json", "w") as f:
    f.write(json.dumps({"flow_seconds_per_video": 0.125,
                        "splits": {"val": {"shards": 1, "converted": 1}}}))
  assert evaluate_lib.flow_seconds_per_video(pattern) == {"vid1": 0.125}
  assert evaluate_lib.split_video_count(pattern) == 1


@pytest.mark.slow
def test_unknown_flow_cost_is_printed_as_unknown_with_how_to_give_it(setup, tmp_path):
  untimed = [_record(k) for k in range(2)]
  for example in untimed:
    example.context.feature[records.FLOW_SECONDS].float_list.value[:] = [0.0]
  files = str(tmp_path / "val-00000-of-00001.tfrecord")
  rf.write_records(files, untimed)
  flow_model = setup["paths"][1]
  config = evaluate_lib.EvalConfig(models=(flow_model,), eval_files=files,
                                   output_dir=str(tmp_path / "unknown"), num_clips=1,
                                   num_frames=8, crop_size=32)
  result = evaluate_lib.evaluate(config, show_progress=False)
  assert result["rows"][0]["flow_seconds_per_video"] == "unknown"
  lines = report.format_table(result["rows"]).splitlines()
  assert lines[2].split()[-1] == "unknown"
  assert lines[-1] == report.UNKNOWN_FLOW_COST_NOTE
  with open(str(tmp_path / "unknown" / "report.json")) as f:
    assert json.load(f)["rows"][0]["flow_seconds_per_video"] == "unknown"
  given = evaluate_lib.evaluate(dataclasses.replace(
      config, output_dir=str(tmp_path / "given"), flow_seconds_per_video=3.5),
                                show_progress=False)
  assert given["rows"][0]["flow_seconds_per_video"] == 3.5
  lines = report.format_table(given["rows"]).splitlines()
  assert lines[-1].split()[-1] == "3.50" and len(lines) == 3


def test_member_names_keep_the_model_dir():
  member = ensemble.Member(path="/runs/synthetic/d3d/student.keras", model=None,
                           modality=ensemble.RGB)
  assert member.name == os.path.join("d3d", "student.keras")
