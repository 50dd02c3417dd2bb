"""The export: a fresh Python without d3d_tf runs both signatures and matches the Keras model."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.inference import predict_lib
from d3d_tf.data import label_map as label_map_lib
from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier
from d3d_tf.serving import export_lib
from d3d_tf.serving.export_config import ExportConfig
from d3d_tf.serving import preprocess
from d3d_tf.serving import warmup
from d3d_tf.video import video_io
from tests.conftest import sample_clip

LABELS = ["ride bike", "walk", "swim"]
CROP = 32
FRAMES = 8


def tiny_model(seed=1):
  """Depth-0.125 S3D-G with He-normal weights so logits depend on the input."""
  model = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3c"),
                         num_classes=3)
  rng = np.random.default_rng(seed)
  for v in model.variables:
    name = v.path.split("/")[-1]
    if name == "kernel":
      std = np.sqrt(2.0 / np.prod(v.shape[:-1])) * (30.0 if "Logits" in v.path else 1.0)
      v.assign(rng.normal(0, std, v.shape).astype("float32"))
    elif name in ("bias", "beta"):
      v.assign(rng.normal(0, 0.1, v.shape).astype("float32"))
  return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  root = tmp_path_factory.mktemp("export")
  model = tiny_model()
  model_path = str(root / "student.keras")
  model.save(model_path)
  label_map_lib.write_label_map(str(root / "label_map.txt"), LABELS)
  out = export_lib.export_from_files(ExportConfig(
      model=model_path, export_base=str(root / "models"), name="d3d", version=3,
      crop_size=CROP, num_frames=FRAMES, warmup_size=(40, 56)))
  frames, _ = video_io.read_video(sample_clip("bikes.mp4"), short_side=48, max_frames=FRAMES)
  batch = np.stack([frames, frames[::-1]])  # [2, T, 48, W, 3]
  expected = model(preprocess.preprocess_frames(batch, CROP), training=False).numpy()
  jpegs = np.array([[tf.io.encode_jpeg(f, quality=90).numpy() for f in video]
                    for video in batch], dtype=object)
  decoded = tf.io.decode_jpeg  # Decoded in this process through the same op as the graph.
  jpeg_frames = np.stack([[decoded(j, channels=3).numpy() for j in v] for v in jpegs])
  expected_jpeg = model(preprocess.preprocess_frames(jpeg_frames, CROP), training=False).numpy()
  return dict(root=root, dir=out, model=model, model_path=model_path, batch=batch,
              expected=expected, jpegs=jpegs, expected_jpeg=expected_jpeg)


_CHILD = textwrap.dedent(r"""
  import json, sys
  import numpy as np
  import tensorflow as tf
  export_dir, data, out = sys.argv[1:4]
  d = np.load(data, allow_pickle=True)
  m = tf.saved_model.load(export_dir)
  res = {}
  a = m.signatures["serving_default"](frames=tf.constant(d["frames"]))
  b = m.signatures["predict_jpeg"](jpeg_frames=tf.constant(d["jpegs"].astype(bytes)))
  for k in a: res["frames_" + k] = a[k].numpy()
  for k in b: res["jpeg_" + k] = b[k].numpy()
  bad = {
    "wrong_rank": lambda: m.signatures["serving_default"](frames=tf.zeros([2, 8, 8, 3], tf.uint8)),
    "float": lambda: m.signatures["serving_default"](frames=tf.zeros([1, 2, 8, 8, 3], tf.float32)),
    "zero_frames": lambda: m.signatures["serving_default"](frames=tf.zeros([1, 0, 40, 40, 3], tf.uint8)),
    "bad_jpeg": lambda: m.signatures["predict_jpeg"](jpeg_frames=tf.constant([[b"not a jpeg"]])),
    "zero_jpegs": lambda: m.signatures["predict_jpeg"](jpeg_frames=tf.zeros([1, 0], tf.string)),
  }
  errors = {}
  for name, fn in bad.items():
    try:
      fn()
      errors[name] = None
    except (tf.errors.InvalidArgumentError, TypeError, ValueError) as e:
      errors[name] = type(e).__name__
  again = m.signatures["serving_default"](frames=tf.constant(d["frames"]))["logits"].numpy()
  res["again_logits"] = again
  np.savez(out, **res)
  geometry = json.loads(m.clip_geometry.numpy().decode())
  print(json.dumps({"errors": errors, "geometry": geometry,
                    "d3d_imported": any(k.startswith("d3d_tf") for k in sys.modules)}))
""")


@pytest.mark.slow
def test_fresh_process_runs_both_signatures_and_rejects_bad_inputs(exported, tmp_path):
  data = tmp_path / "inputs.npz"
  np.savez(data, frames=exported["batch"], jpegs=exported["jpegs"])
  out = tmp_path / "outputs.npz"
  env = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run([sys.executable, "-c", _CHILD, exported["dir"], str(data), str(out)],
                        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  status = json.loads(proc.stdout.strip().splitlines()[-1])
  assert status["d3d_imported"] is False
  assert status["geometry"]["num_frames"] == FRAMES and status["geometry"]["crop_size"] == CROP
  assert status["geometry"]["labels"] == LABELS
  assert all(status["errors"].values()), status["errors"]  # Every bad input raised an error.
  res = np.load(out, allow_pickle=True)
  np.testing.assert_allclose(res["frames_logits"], exported["expected"], rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(res["jpeg_logits"], exported["expected_jpeg"], rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(res["again_logits"], exported["expected"], rtol=1e-4, atol=1e-4)
  assert np.ptp(exported["expected"]) > 1e-2  # The comparison is not between near-zeros.
  probs = res["frames_probabilities"]
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
  order = np.argsort(-exported["expected"], axis=1)
  np.testing.assert_array_equal(res["frames_top_k_indices"], order)
  labels = res["frames_top_k_labels"]
  assert [[s.decode() for s in row] for row in labels] == [[LABELS[i] for i in r] for r in order]
  np.testing.assert_allclose(res["frames_top_k_scores"],
                             np.take_along_axis(probs, order, axis=1), rtol=1e-6)


@pytest.mark.slow
def test_saved_model_cli_shows_documented_signatures(exported):
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  proc = subprocess.run([cli, "show", "--dir", exported["dir"], "--all"], capture_output=True,
                        text=True, timeout=120,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert proc.returncode == 0, proc.stderr[-2000:]
  text = proc.stdout
  assert "signature_def['serving_default']" in text
  assert "signature_def['predict_jpeg']" in text
  assert "inputs['frames'] tensor_info:\n        dtype: DT_UINT8\n        shape: (-1, -1, -1, -1, 3)" in text
  assert "inputs['jpeg_frames'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1, -1)" in text
  for key in ("logits", "probabilities", "top_k_indices", "top_k_labels", "top_k_scores"):
    assert f"outputs['{key}']" in text


@pytest.mark.slow
def test_layout_warmup_metadata_and_predict_lib(exported):
  root = exported["root"]
  assert exported["dir"] == str(root / "models" / "d3d" / "3")
  assert not os.path.exists(exported["dir"] + ".tmp")
  logs = warmup.read_warmup_requests(
      os.path.join(exported["dir"], "assets.extra", "tf_serving_warmup_requests"))
  assert [l.predict_log.request.model_spec.signature_name for l in logs] == [
      "serving_default", "predict_jpeg"]
  assert {l.predict_log.request.model_spec.name for l in logs} == {"d3d"}
  loaded = tf.saved_model.load(exported["dir"])
  for log in logs:  # Replaying the warm-up requests works and gives a 3-class answer.
    request = log.predict_log.request
    inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
    outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
    assert outputs["probabilities"].shape == (1, 3)
  with open(os.path.join(exported["dir"], "assets.extra", "d3d_export.json")) as f:
    meta = json.load(f)
  assert meta["labels"] == LABELS and meta["crop_size"] == CROP
  with pytest.raises(FileExistsError):
    export_lib.export(exported["model"], LABELS, str(root / "models"), "d3d", 3)
  # predict_lib on the model directory (highest version) equals the .keras path.
  saved = predict_lib.load_predictor(str(root / "models" / "d3d"))
  keras_pred = predict_lib.load_predictor(exported["model_path"], crop_size=CROP,
                                          num_frames=FRAMES)
  assert saved.labels == LABELS == keras_pred.labels
  np.testing.assert_allclose(saved.logits_fn(exported["batch"]),
                             keras_pred.logits_fn(exported["batch"]), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_float16_export_halves_weights_and_keeps_predictions(exported, tmp_path):
  out = export_lib.export(exported["model"], LABELS, str(tmp_path), "d3d", 1, crop_size=CROP,
                          num_frames=FRAMES, quantize="float16", warmup_size=(40, 56))
  loaded = tf.saved_model.load(out)
  logits = loaded.signatures["serving_default"](
      frames=tf.constant(exported["batch"]))["logits"].numpy()
  np.testing.assert_allclose(logits, exported["expected"], rtol=0.05, atol=0.05)
  np.testing.assert_array_equal(np.argmax(logits, 1), np.argmax(exported["expected"], 1))
  def size(d):
    return sum(os.path.getsize(os.path.join(d, "variables", f))
               for f in os.listdir(os.path.join(d, "variables")))
  assert size(out) < 0.6 * size(exported["dir"])


def test_export_rejects_flow_models_and_label_mismatch(tmp_path):
  flow = S3DGClassifier(S3DGBackbone(input_channels=2, depth_multiplier=0.125), num_classes=3)
  with pytest.raises(ValueError, match="RGB"):
    export_lib.export(flow, LABELS, str(tmp_path), "flow", 1)
  rgb = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3c"),
                         num_classes=3)
  with pytest.raises(ValueError, match="label map has 2"):
    export_lib.export(rgb, LABELS[:2], str(tmp_path), "rgb", 1)


def test_stored_geometry_exports_like_the_flags_retyped(tmp_path):
  model = tiny_model()
  model.clip_geometry = ClipGeometry(num_frames=FRAMES, crop_size=CROP, labels=LABELS)
  path = str(tmp_path / "student.keras")
  model.save(path)  # No label_map.txt beside it: the labels travel in the file.
  stored = export_lib.export_from_files(ExportConfig(
      model=path, export_base=str(tmp_path / "a"), warmup_size=(40, 56)))
  label_map_lib.write_label_map(str(tmp_path / "labels.txt"), LABELS)
  retyped = export_lib.export_from_files(ExportConfig(
      model=path, label_map=str(tmp_path / "labels.txt"), export_base=str(tmp_path / "b"),
      crop_size=CROP, num_frames=FRAMES, crop_fraction=0.875, warmup_size=(40, 56)))
  frames, _ = video_io.read_video(sample_clip("bikes.mp4"), short_side=48, max_frames=FRAMES)
  outputs = [tf.saved_model.load(d).signatures["serving_default"](frames=tf.constant(frames[None]))
             for d in (stored, retyped)]
  for key in ("logits", "top_k_labels"):
    np.testing.assert_array_equal(outputs[0][key].numpy(), outputs[1][key].numpy())
  served = export_lib.read_geometry(stored)
  assert served == export_lib.read_geometry(retyped)
  assert (served.num_frames, served.crop_size, served.labels) == (FRAMES, CROP, tuple(LABELS))
  with open(os.path.join(stored, "assets.extra", "d3d_export.json")) as f:
    assert json.load(f)["geometry_overrides"] == []
  predictor = predict_lib.load_predictor(stored)  # Clip length from the export itself.
  assert (predictor.num_frames, predictor.labels) == (FRAMES, LABELS)
  with pytest.raises(predict_lib.PredictError, match="--crop_size is baked into the SavedModel"):
    predict_lib.load_predictor(stored, crop_size=64)
  notes = []
  wider = export_lib.export(model, LABELS, str(tmp_path / "c"), "d3d", 1, crop_size=48,
                            warmup_size=(40, 56), notes=notes)
  assert export_lib.read_geometry(wider).crop_size == 48
  assert notes and "--crop_size=48 overrides crop_size=32" in notes[0]
  plain = tiny_model()
  with pytest.raises(ValueError, match="does not record the clip geometry.*--num_frames"):
    export_lib.export(plain, LABELS, str(tmp_path / "d"), "d3d", 1, crop_size=CROP)
