"""predict: top-k of a real clip, sliding windows, and one-line exit-2 failures."""

import json

import numpy as np
import pytest

from d3d_tf import predict
from d3d_tf.inference import predict_lib
from d3d_tf.data import label_map as label_map_lib
from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier
from d3d_tf.serving import preprocess
from d3d_tf.video import video_io
from tests.conftest import run_absl_main, sample_clip
from tests.data import cut_videos


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
  root = tmp_path_factory.mktemp("predict")
  model = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3c"),
                         num_classes=3)
  head = model.get_layer("Logits_Conv2d_0c_1x1")
  head.kernel.assign(np.random.default_rng(0).normal(0, 50, head.kernel.shape).astype("float32"))
  path = str(root / "student.keras")
  model.save(path)
  label_map_lib.write_label_map(str(root / "label_map.txt"), ["a", "b", "c"])
  return dict(root=root, path=path, model=model)


def _run(argv, capsys):
  return run_absl_main("predict", predict.main, argv, capsys)


def test_top_k_and_windows_match_direct_model(keras_model):
  predictor = predict_lib.load_predictor(keras_model["path"], crop_size=32, num_frames=8)
  clip = sample_clip("bikes.mp4")
  result = predict_lib.predict_video(predictor, clip, num_clips=2,
                                     short_side=48, window_seconds=2.0)
  frames, fps = video_io.read_video(clip, short_side=48)
  idx = predict_lib.clip_indices(len(frames), 8, 2)
  logits = keras_model["model"](preprocess.preprocess_frames(frames[idx], 32)).numpy().mean(0)
  probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
  assert [p["index"] for p in result["top_k"]] == np.argsort(-probs).tolist()
  np.testing.assert_allclose([p["score"] for p in result["top_k"]], np.sort(probs)[::-1],
                             rtol=1e-4)
  assert len(result["windows"]) == int(np.ceil(len(frames) / round(2.0 * fps)))
  assert result["windows"][0]["start_seconds"] == 0.0
  assert result["windows"][-1]["end_seconds"] == pytest.approx(len(frames) / fps)


def test_cli_json_and_one_line_failures(keras_model, tmp_path, capsys):
  code, out = _run([f"--model={keras_model['path']}", f"--video={sample_clip('bikes.mp4')}",
                    "--json", "--crop_size=32", "--num_frames=8", "--num_clips=1",
                    "--short_side=48"], capsys)
  assert code == 0
  assert [p["label"] for p in json.loads(out.out)["top_k"]][0] in {"a", "b", "c"}
  bad_video = tmp_path / "broken.mp4"
  bad_video.write_bytes(b"this is not a video")
  lonely = tmp_path / "lonely.keras"
  lonely.write_bytes(open(keras_model["path"], "rb").read())
  cases = {
      "Cannot read video": [f"--model={keras_model['path']}", f"--video={bad_video}",
                            "--crop_size=32", "--num_frames=8"],
      "does not exist": ["--model=/nope/model.keras", f"--video={bad_video}"],
      "stores no class names": [f"--model={lonely}", f"--video={bad_video}"],
      "pass --num_frames and --crop_size": [f"--model={keras_model['path']}",
                                            f"--video={bad_video}"],
  }
  for message, argv in cases.items():
    code, out = _run(argv, capsys)
    assert code == 2, message
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.err


def test_stored_geometry_sets_frames_stride_crop_and_labels(keras_model, tmp_path, capsys):
  model = keras_model["model"]
  model.clip_geometry = ClipGeometry(num_frames=4, stride=2, crop_size=40,
                                     labels=("x", "y", "z"))
  path = str(tmp_path / "geometry.keras")  # No label_map.txt here: the file carries labels.
  model.save(path)
  model.clip_geometry = None
  predictor = predict_lib.load_predictor(path)
  assert (predictor.num_frames, predictor.stride, predictor.labels) == (4, 2, ["x", "y", "z"])
  frames, _ = video_io.read_video(sample_clip("bikes.mp4"), short_side=48)
  top = predict_lib.classify_frames(predictor, frames, num_clips=2)
  direct = {}
  for stride in (1, 2):
    idx = predict_lib.clip_indices(len(frames), 4, 2, stride=stride)
    direct[stride] = model(preprocess.preprocess_frames(frames[idx], 40)).numpy().mean(0)
  probs = np.exp(direct[2] - direct[2].max()) / np.exp(direct[2] - direct[2].max()).sum()
  np.testing.assert_allclose([p["score"] for p in top], np.sort(probs)[::-1], rtol=1e-6)
  # The clips are stride-2 clips: stride-1 clips give other logits (relative to their size).
  scale = np.abs(direct[2]).max()
  assert np.abs(direct[2] - direct[1]).max() > 1e-2 * scale > 0
  np.testing.assert_allclose(
      predictor.logits_fn(frames[predict_lib.clip_indices(len(frames), 4, 2, stride=2)]).mean(0),
      direct[2], rtol=1e-4, atol=1e-4 * scale)
  code, out = _run([f"--model={path}", f"--video={sample_clip('bikes.mp4')}", "--num_clips=1",
                    "--short_side=48", "--num_frames=6"], capsys)
  assert code == 0, out.err
  assert "note: --num_frames=6 overrides num_frames=4" in out.err
  code, out = _run([f"--model={path}", f"--video={sample_clip('bikes.mp4')}", "--stride=1"],
                   capsys)
  assert code == 2 and "--stride=1 contradicts" in out.err


def test_a_video_that_lost_frames_is_predicted_with_a_warning(keras_model, tmp_path):
  predictor = predict_lib.load_predictor(keras_model["path"], crop_size=32, num_frames=8)
  whole = cut_videos.write_mp4(tmp_path / "whole.mp4", n=40)
  assert "warning" not in predict_lib.predict_video(predictor, whole, num_clips=1)
  cut = cut_videos.cut_before_last_packets(whole, tmp_path / "cut.mp4", 3)
  result = predict_lib.predict_video(predictor, cut, num_clips=1)
  assert result["num_frames"] == 37
  assert result["warning"] == ("decoded 37 of 40 frames: the stream ends early; predicted from "
                               "the frames that decoded (the file may be truncated or damaged)")
  assert predict_lib.format_result(result).splitlines()[1] == "  warning: " + result["warning"]
