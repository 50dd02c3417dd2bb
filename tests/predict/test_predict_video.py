"""predict: top-k of a real clip, sliding windows, and one-line exit-2 failures."""

import json

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

from d3d_tf import predict
from d3d_tf import predict_lib
from d3d_tf.data import label_map as label_map_lib
from d3d_tf.data import video_io
from d3d_tf.models import S3DGBackbone, S3DGClassifier
from d3d_tf.serving import preprocess
from tests.conftest import sample_clip


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
  root = tmp_path_factory.mktemp("predict")
  model = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125), num_classes=3)
  head = model.get_layer("Logits_Conv2d_0c_1x1")
  head.kernel.assign(np.random.default_rng(0).normal(0, 50, head.kernel.shape).astype("float32"))
  path = str(root / "student.keras")
  model.save(path)
  label_map_lib.write_label_map(str(root / "label_map.txt"), ["a", "b", "c"])
  return dict(root=root, path=path, model=model)


def _run(argv, capsys):
  flags.FLAGS.unparse_flags()
  with flagsaver.flagsaver():
    flags.FLAGS(["predict"] + argv)
    try:
      predict.main(["predict"])
      code = 0
    except SystemExit as e:
      code = e.code
  return code, capsys.readouterr()


def test_top_k_and_windows_match_direct_model(keras_model):
  predictor = predict_lib.load_predictor(keras_model["path"], crop_size=32)
  clip = sample_clip("bikes.mp4")
  result = predict_lib.predict_video(predictor, clip, num_frames=8, num_clips=2,
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
                            "--crop_size=32"],
      "does not exist": ["--model=/nope/model.keras", f"--video={bad_video}"],
      "No label map": [f"--model={lonely}", f"--video={bad_video}"],
  }
  for message, argv in cases.items():
    code, out = _run(argv, capsys)
    assert code == 2, message
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.err
