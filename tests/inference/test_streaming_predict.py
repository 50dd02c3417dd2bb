"""predict, streamed: per-window logits equal the whole-video path; spread clips equal the
old whole-array placement; windows written as lines."""

import json

import numpy as np
import pytest

from d3d_tf.inference import predict_lib
from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier
from d3d_tf.video import video_io
from tests.conftest import sample_clip


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
  model = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3c"),
                         num_classes=3, clip_geometry=ClipGeometry(
                             num_frames=4, stride=2, crop_size=32, labels=("a", "b", "c")))
  head = model.get_layer("Logits_Conv2d_0c_1x1")
  head.kernel.assign(np.random.default_rng(0).normal(0, 50, head.kernel.shape).astype("float32"))
  path = str(tmp_path_factory.mktemp("model") / "student.keras")
  model.save(path)
  return predict_lib.load_predictor(path)


def test_streamed_window_logits_equal_the_whole_video_path(predictor):
  clip = sample_clip("carphone_pristine.mp4")  # 120 frames.
  frames, fps = video_io.read_video(clip, short_side=48)
  streamed = list(predict_lib.iter_window_predictions(
      predictor, clip, window_stride=5, short_side=48, batch_size=3))
  starts = list(range(0, 120 - 8 + 1, 5))  # Span 4 x 2, overlapping.
  assert len(streamed) == len(starts)
  whole = predictor.logits_fn(np.stack([frames[s:s + 8:2] for s in starts]))
  np.testing.assert_allclose(np.stack([w["logits"] for w in streamed]), whole,
                             rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose([w["start_seconds"] for w in streamed],
                             np.array(starts) / fps, atol=1e-3)
  np.testing.assert_allclose([w["end_seconds"] for w in streamed],
                             (np.array(starts) + 8) / fps, atol=1e-3)
  line = json.loads(predict_lib.window_line(clip, streamed[0]))
  assert line["labels"] == [p["label"] for p in streamed[0]["top_k"]]
  assert line["start_seconds"] == 0.0
  row = predict_lib.window_line(clip, streamed[0], "csv").split(",")
  assert row[3] == "|".join(line["labels"]) and len(row) == 5


def test_spread_clips_and_sliding_windows_match_the_whole_array(predictor):
  clip = sample_clip("carphone_pristine.mp4")
  frames, fps = video_io.read_video(clip, short_side=48)
  result = predict_lib.predict_video(predictor, clip, num_clips=3, short_side=48,
                                     window_seconds=1.5)
  idx = predict_lib.clip_indices(len(frames), 4, 3, 2)
  expected = predictor.logits_fn(frames[idx]).mean(0)
  probs = np.exp(expected - expected.max()) / np.exp(expected - expected.max()).sum()
  np.testing.assert_allclose([p["score"] for p in result["top_k"]], np.sort(probs)[::-1],
                             rtol=1e-4)
  step = round(1.5 * fps)  # 45 frames: windows at 0, 45, 90 (the last one cut short).
  assert [w["start_seconds"] for w in result["windows"]] == pytest.approx(
      [0, 45 / fps, 90 / fps], abs=1e-3)
  assert result["windows"][-1]["end_seconds"] == pytest.approx(120 / fps, abs=1e-3)
  window_logits = []
  for start in (0, 45, 90):
    chunk = frames[start:start + step]
    window_logits.append(predictor.logits_fn(
        chunk[predict_lib.clip_indices(len(chunk), 4, 1, 2)]).mean(0))
  mean = np.mean(window_logits, axis=0)
  assert [p["index"] for p in result["windows_top_k"]] == np.argsort(-mean).tolist()
