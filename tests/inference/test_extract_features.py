"""extract_features: features equal the model's own endpoints on the same clips, timestamps,
the mirrored output tree, resume, bad videos listed, records, and the one-line errors."""

import csv
import importlib.util
import os
import shutil

import numpy as np
import pytest

from d3d_tf import extract_features
from d3d_tf.inference import features_config
from d3d_tf.inference import features_lib
from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier
from d3d_tf.serving import preprocess
from d3d_tf.video import video_io
from tests.conftest import run_absl_main
from tests.inference.conftest import write_video

GEOMETRY = ClipGeometry(num_frames=4, stride=2, crop_size=32, labels=("a", "b", "c"))
SPAN = 8  # num_frames x stride


@pytest.fixture(scope="module")
def s3dg(tmp_path_factory):
  model = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3c"),
                         num_classes=3, clip_geometry=GEOMETRY)
  path = str(tmp_path_factory.mktemp("model") / "student.keras")
  model.save(path)
  return dict(path=path, model=model)


@pytest.fixture(scope="module")
def video_tree(tmp_path_factory):
  """videos/a/one.mkv (30 frames), videos/b/two.mp4 (20 frames), both 25 fps."""
  root = tmp_path_factory.mktemp("tree") / "videos"
  write_video(root / "a" / "one.mkv", [40 * k for k in range(30)], seed=1)
  write_video(root / "b" / "two.mp4", [40 * k for k in range(20)], seed=2)
  return root


def _config(**kw):
  return features_config.FeaturesConfig(**kw)


def _clips(path, starts):
  frames, _ = video_io.read_video(path, short_side=48)
  return np.stack([frames[s:s + SPAN:2] for s in starts])


def _load(path):
  with np.load(path) as stored:
    return {k: stored[k] for k in stored.files}


def _rows(path):
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))


@pytest.mark.parametrize("endpoint", ["Mixed_3c", "Conv2d_2c_3x3", "logits"])
def test_features_are_the_models_endpoint_on_the_same_clips(s3dg, video_tree, tmp_path,
                                                            endpoint):
  out = tmp_path / "features"
  counts = features_lib.extract(_config(
      model=s3dg["path"], videos=str(video_tree), output_dir=str(out), endpoint=endpoint,
      window_stride=6, short_side=48, batch_size=3, quiet=True))
  assert counts == {"done": 2, "existing": 0, "failed": 0, "windows": 4 + 3}
  stored = _load(out / "a" / "one.npz")  # The tree mirrors the input's.
  starts = [0, 6, 12, 18]  # Span 8, stride 6, 30 frames.
  clips = preprocess.preprocess_frames(_clips(str(video_tree / "a" / "one.mkv"), starts), 32)
  if endpoint == "logits":
    expected = s3dg["model"](clips, training=False).numpy()
  else:
    expected = s3dg["model"].backbone(clips, training=False)[endpoint].numpy().mean((1, 2, 3))
  np.testing.assert_allclose(stored["features"], expected, rtol=1e-4, atol=1e-5)
  assert stored["features"].dtype == np.float32
  np.testing.assert_allclose(stored["start_seconds"], np.array(starts) / 25)
  np.testing.assert_allclose(stored["end_seconds"], (np.array(starts) + SPAN) / 25)
  assert float(stored["fps"]) == 25.0
  assert str(stored["endpoint"]) == endpoint and str(stored["model"]) == s3dg["path"]
  assert len(_load(out / "b" / "two.npz")["features"]) == 3
  assert [(r["video"], r["windows"], r["status"]) for r in _rows(out / "manifest.csv")] == [
      (os.path.join("a", "one.mkv"), "4", "done"), (os.path.join("b", "two.mp4"), "3", "done")]


def test_keep_time_three_views_and_float16(s3dg, video_tree, tmp_path):
  out = tmp_path / "features"
  features_lib.extract(_config(
      model=s3dg["path"], videos=str(video_tree / "a"), output_dir=str(out),
      endpoint="Mixed_3c", keep_time=True, views=3, dtype="float16", short_side=48,
      quiet=True))
  stored = _load(out / "one.npz")
  frames, _ = video_io.read_video(str(video_tree / "a" / "one.mkv"), short_side=48)
  clip = frames[8:16:2]  # Window 1, back to back. 48 x 64 frames: crops along the width.
  side = 42  # round(48 x 0.875)
  views = []
  for x in (0, (64 - side) // 2, 64 - side):
    crop = clip[:, 3:3 + side, x:x + side]
    views.append(preprocess.preprocess_frames(crop[None], 32, 1.0)[0])
  out_3c = s3dg["model"].backbone(np.stack(views), training=False)["Mixed_3c"].numpy()
  expected = out_3c.mean((2, 3)).mean(0)
  assert stored["features"].dtype == np.float16
  assert stored["features"].shape == (3,) + expected.shape
  np.testing.assert_allclose(stored["features"][1], expected, rtol=2e-3, atol=2e-3)


def test_rerun_skips_finished_videos_and_bad_videos_are_listed(s3dg, video_tree, tmp_path):
  videos = tmp_path / "videos"
  shutil.copytree(video_tree, videos)
  (videos / "broken.mp4").write_bytes(b"not a video")
  write_video(videos / "short.mkv", [40 * k for k in range(5)])  # Under one window.
  out = tmp_path / "features"
  config = _config(model=s3dg["path"], videos=str(videos), output_dir=str(out),
                   short_side=48, quiet=True)
  assert features_lib.extract(config) == {"done": 2, "existing": 0, "failed": 2, "windows": 5}
  failures = {r["video"]: r["reason"] for r in _rows(out / "failures.csv")}
  assert set(failures) == {"broken.mp4", "short.mkv"}
  assert "not a readable video" in failures["broken.mp4"]
  assert "shorter than one window" in failures["short.mkv"]
  written = (out / "a" / "one.npz").read_bytes()
  (out / "b" / "two.npz").unlink()  # As if the run had been killed before this video.
  assert features_lib.extract(config) == {"done": 1, "existing": 1, "failed": 2, "windows": 2}
  assert (out / "a" / "one.npz").read_bytes() == written
  statuses = {r["video"]: r["status"] for r in _rows(out / "manifest.csv")}
  assert statuses == {os.path.join("a", "one.mkv"): "existing",
                      os.path.join("b", "two.mp4"): "done", "broken.mp4": "failed",
                      "short.mkv": "failed"}
  assert not [p for p in out.rglob("*.tmp")]


def test_records_give_the_features_of_their_stored_frames(s3dg, tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tests.data import records_fixture  # pylint: disable=g-import-not-at-top
  path = records_fixture.write_records(str(tmp_path / "val.tfrecord"), [
      records_fixture.make_video_example("clips/x", 0, num_frames=16, height=40, width=56)])
  out = tmp_path / "features"
  features_lib.extract(_config(model=s3dg["path"], records=path, output_dir=str(out),
                               endpoint="Mixed_3c", quiet=True))
  stored = _load(out / "clips" / "x.npz")
  from d3d_tf.data import records  # pylint: disable=g-import-not-at-top
  serialized = next(tf.data.TFRecordDataset(path).as_numpy_iterator())
  context, sequence = records.parse_sequence_example(serialized, with_flow=False)
  frames = preprocess.decode_jpeg_video(sequence[records.RGB_JPEG]).numpy()
  clips = preprocess.preprocess_frames(np.stack([frames[0:8:2], frames[8:16:2]]), 32)
  expected = s3dg["model"].backbone(clips)["Mixed_3c"].numpy().mean((1, 2, 3))
  np.testing.assert_allclose(stored["features"], expected, rtol=1e-4, atol=1e-5)
  fps = float(context[records.FPS].numpy())
  np.testing.assert_allclose(stored["end_seconds"], [8 / fps, 16 / fps])


@pytest.mark.skipif(importlib.util.find_spec("keras_cv") is None, reason="keras-cv missing")
def test_videoswin_pooled_tokens(video_tree, tmp_path):
  import keras  # pylint: disable=g-import-not-at-top
  from d3d_tf.models import videoswin_classifier as vs  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  backbone = vs.videoswin_backbone(8, 32, embed_dim=24, depths=(1, 1, 1, 1),
                                   num_heads=(1, 2, 4, 8), window_size=(4, 4, 4),
                                   drop_path_rate=0.0)
  model = vs.VideoSwinClassifier(backbone, 3, dropout_keep_prob=1.0,
                                 clip_geometry=ClipGeometry(num_frames=8, crop_size=32))
  path = str(tmp_path / "swin.keras")
  model.save(path)
  out = tmp_path / "features"
  features_lib.extract(_config(model=path, videos=str(video_tree / "b"), output_dir=str(out),
                               short_side=48, quiet=True))
  stored = _load(out / "two.npz")
  frames, _ = video_io.read_video(str(video_tree / "b" / "two.mp4"), short_side=48)
  clips = preprocess.preprocess_frames(np.stack([frames[0:8], frames[8:16]]), 32)
  pooled = keras.Model(model.input, model.get_layer("Logits_pool").output)
  np.testing.assert_allclose(stored["features"], pooled(clips).numpy(), rtol=1e-4, atol=1e-5)
  assert str(stored["endpoint"]) == "pooled"


def test_one_line_errors(s3dg, video_tree, tmp_path, capsys):
  empty = tmp_path / "empty"
  empty.mkdir()
  out = f"--output_dir={tmp_path / 'out'}"
  cases = {
      "holds no video file": [f"--model={s3dg['path']}", f"--videos={empty}", out],
      "does not exist": ["--model=/nope/model.keras", f"--videos={video_tree}", out],
      "is not an endpoint of": [f"--model={s3dg['path']}", f"--videos={video_tree}", out,
                                "--endpoint=Mixed_5c"],
      "exactly one of --videos": [f"--model={s3dg['path']}", out],
  }
  for message, argv in cases.items():
    code, captured = run_absl_main("extract_features", extract_features.main, argv, capsys)
    assert code == 2, message
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], captured.err


def test_sigkill_mid_run_then_rerun_gives_the_same_files(s3dg, tmp_path):
  import signal  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  videos = tmp_path / "videos"
  for k in range(6):
    write_video(videos / f"v{k}.mkv", [40 * i for i in range(40)], seed=k)
  flags = [f"--model={s3dg['path']}", f"--videos={videos}", "--short_side=48",
           "--batch_size=1", "--quiet"]
  killed = tmp_path / "killed"
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(os.environ, PYTHONPATH=repo)
  process = subprocess.Popen(
      [sys.executable, "-m", "d3d_tf.extract_features", *flags, f"--output_dir={killed}"],
      cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 240
  while not list(killed.glob("*.npz")) and process.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait()
  first = sorted(p.name for p in killed.glob("*.npz"))
  assert 1 <= len(first) < 6, first  # Killed mid-run.
  config = dict(model=s3dg["path"], videos=str(videos), short_side=48, batch_size=1,
                quiet=True)
  counts = features_lib.extract(_config(output_dir=str(killed), **config))
  assert counts["existing"] == len(first) and counts["done"] == 6 - len(first)
  clean = tmp_path / "clean"
  features_lib.extract(_config(output_dir=str(clean), **config))
  for k in range(6):
    assert (killed / f"v{k}.npz").read_bytes() == (clean / f"v{k}.npz").read_bytes()


def test_a_relaunch_with_other_settings_is_refused_not_mixed(s3dg, video_tree, tmp_path):
  from d3d_tf.common import config_lib  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "out")
  first = _config(model=s3dg["path"], videos=str(video_tree), output_dir=out, quiet=True,
                  endpoint="Mixed_3c")
  assert features_lib.extract(first)["done"] == 2
  kept = _load(os.path.join(out, "a", "one.npz"))
  with pytest.raises(config_lib.ChangedSettings, match="then: --endpoint=Mixed_3c"):
    features_lib.extract(_config(**dict(first.__dict__, endpoint="Conv2d_2c_3x3")))
  np.testing.assert_array_equal(_load(os.path.join(out, "a", "one.npz"))["features"],
                                kept["features"])
  assert features_lib.extract(_config(**dict(first.__dict__, batch_size=3)))["existing"] == 2
  fresh = features_lib.extract(_config(**dict(first.__dict__, endpoint="Conv2d_2c_3x3",
                                              overwrite=True)))
  assert fresh["done"] == 2 and str(_load(os.path.join(out, "a", "one.npz"))["endpoint"]) == \
      "Conv2d_2c_3x3"
