"""predict streams a video window by window: overlapping windows written as they come, the
video's result from the mean window logits, and a timeline picture."""

import csv
import json

import numpy as np
import pytest

from d3d_tf import predict
from d3d_tf.inference import predict_lib
from d3d_tf.inference import timeline
from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier
from tests.conftest import run_absl_main
from tests.inference.conftest import write_video


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
  model = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3c"),
                         num_classes=3, clip_geometry=ClipGeometry(
                             num_frames=4, stride=1, crop_size=32, labels=("a", "b", "c")))
  head = model.get_layer("Logits_Conv2d_0c_1x1")
  head.kernel.assign(np.random.default_rng(0).normal(0, 50, head.kernel.shape).astype("float32"))
  path = str(tmp_path_factory.mktemp("model") / "student.keras")
  model.save(path)
  return path


@pytest.fixture(scope="module")
def video(tmp_path_factory):
  """50 frames at 25 fps: 2 s."""
  return write_video(tmp_path_factory.mktemp("v") / "two_seconds.mkv",
                     [40 * k for k in range(50)])


def test_overlapping_windows_their_times_and_the_mean(model_path, video, tmp_path):
  predictor = predict_lib.load_predictor(model_path)
  out = tmp_path / "w.jsonl"
  with open(out, "w", encoding="utf-8") as sink:
    line = timeline.predict_timeline(predictor, video, window_seconds=0.4, stride_seconds=0.2,
                                     short_side=48, sink=sink)
  # 10-frame windows every 5 frames over 50 frames: starts 0, 5, ..., 40.
  np.testing.assert_allclose(line.starts, np.arange(9) * 0.2, atol=1e-6)
  np.testing.assert_allclose(line.ends, line.starts + 0.4, atol=1e-6)
  rows = [json.loads(r) for r in out.read_text().splitlines()]
  assert [r["start_seconds"] for r in rows] == pytest.approx(list(line.starts))
  windows = list(predict_lib.iter_window_predictions(predictor, video, window_frames=10,
                                                     window_stride=5, short_side=48))
  mean = np.mean([w["logits"] for w in windows], axis=0)
  np.testing.assert_allclose(line.mean_logits, mean, rtol=1e-5, atol=1e-5)
  top = timeline.result(line, predictor.labels)["top_k"][0]["label"]
  assert top == predictor.labels[int(np.argmax(mean))]


def test_cli_writes_csv_windows_and_a_timeline_png(model_path, video, tmp_path, capsys):
  code, out = run_absl_main("predict", predict.main, [
      f"--model={model_path}", f"--video={video}", "--window_stride=0.4",
      f"--windows_output={tmp_path / 'w.csv'}", f"--plot={tmp_path / 'plots'}", "--json"],
      capsys)
  assert code == 0, out.err
  result = json.loads(out.out.strip().splitlines()[-1])
  # The model's 4-frame clip every 0.4 s (10 frames) over 50 frames: starts 0, 10, ..., 40.
  assert result["num_windows"] == 5
  with open(tmp_path / "w.csv", newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 5 and rows[0]["video"] == video
  assert float(rows[1]["start_seconds"]) == pytest.approx(0.4)
  png = tmp_path / "plots" / "two_seconds.timeline.png"
  assert result["plot"] == str(png) and png.read_bytes()[:4] == b"\x89PNG"


def test_a_window_longer_than_the_video_is_one_line(model_path, video):
  predictor = predict_lib.load_predictor(model_path)
  with pytest.raises(predict_lib.PredictError, match="shorter than one window"):
    timeline.predict_timeline(predictor, video, window_seconds=10.0)


def test_windows_output_must_be_jsonl_or_csv(model_path, video, tmp_path, capsys):
  code, out = run_absl_main("predict", predict.main, [
      f"--model={model_path}", f"--video={video}", f"--windows_output={tmp_path / 'w.txt'}"],
      capsys)
  assert code == 2 and "--windows_output" in out.err and ".jsonl" in out.err
