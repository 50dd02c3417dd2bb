"""ONNX and LiteRT exports: a Python that never imports d3d_tf gets the Keras model's logits."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from d3d_tf.data import processors
from d3d_tf.inference import predict_lib
from d3d_tf.inference import runtimes
from d3d_tf.serving import litert_export
from d3d_tf.serving import onnx_export
from d3d_tf.serving import portable
from d3d_tf.video import video_io
from tests.conftest import sample_clip
from tests.data import records_fixture
from tests.serving.portable_models import CROP, FRAMES, LABELS, VARIANTS, tiny_model


def keras_logits(model, clips):
  return model(processors.normalize_rgb(clips), training=False).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  root = tmp_path_factory.mktemp("portable")
  rng = np.random.default_rng(0)
  frames, _ = video_io.read_video(sample_clip("bikes.mp4"), short_side=48, max_frames=FRAMES)
  real = portable.crop_clips_uint8(frames[None], CROP, 0.875).numpy()
  rgb_clips = np.concatenate(
      [real, rng.integers(0, 256, (1, FRAMES, CROP, CROP, 3), dtype=np.uint8)])
  flow_clips = rng.integers(0, 256, (2, FRAMES, CROP, CROP, 2), dtype=np.uint8)
  out = {}
  for seed, (name, kwargs) in enumerate(VARIANTS.items(), start=1):
    kwargs = dict(kwargs)
    channels = kwargs.pop("input_channels")
    model = tiny_model(channels, seed, **kwargs)
    clips = rgb_clips if channels == 3 else flow_clips
    onnx_path = onnx_export.export(model, LABELS, str(root / f"{name}.onnx"))
    tflite_path = litert_export.export(model, LABELS, str(root / f"{name}.tflite"))
    np.save(root / f"{name}_clips.npy", clips)
    out[name] = dict(model=model, clips=clips, onnx=onnx_path, tflite=tflite_path,
                     expected=keras_logits(model, clips))
  out["root"] = root
  return out


# Loads both files with the runtimes alone; fails if anything imported d3d_tf.
_CHILD = textwrap.dedent(r"""
  import json, sys
  import numpy as np
  import onnxruntime
  from ai_edge_litert.interpreter import Interpreter
  onnx_path, tflite_path, clips_path, out = sys.argv[1:5]
  clips = np.load(clips_path)
  session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
  onnx_out = session.run(["logits", "probabilities"], {"frames": clips})
  meta = session.get_modelmeta().custom_metadata_map
  runner = Interpreter(model_path=tflite_path).get_signature_runner()
  lite = runner(frames=clips)
  lite_one = runner(frames=clips[:1])["logits"]  # The batch axis resizes.
  with open(tflite_path + ".json") as f:
    sidecar = json.load(f)
  assert not any(m.startswith("d3d_tf") for m in sys.modules), "d3d_tf was imported"
  np.savez(out, onnx_logits=onnx_out[0], onnx_probabilities=onnx_out[1],
           lite_logits=lite["logits"], lite_probabilities=lite["probabilities"],
           lite_one=lite_one, onnx_meta=json.dumps(dict(meta)), sidecar=json.dumps(sidecar))
""")


@pytest.fixture(scope="module")
def loaded(exported):
  root = exported["root"]
  results = {}
  for name in VARIANTS:
    out = root / f"{name}_out.npz"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, exported[name]["onnx"], exported[name]["tflite"],
         str(root / f"{name}_clips.npy"), str(out)],
        cwd=str(root), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results[name] = dict(np.load(out))
  return results


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("runtime", ["onnx", "lite"])
def test_float32_logits_match_keras_and_depend_on_the_clip(exported, loaded, name, runtime):
  expected = exported[name]["expected"]
  got = loaded[name][f"{runtime}_logits"]
  assert got.shape == (2, len(LABELS))
  np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
  # Two different clips get clearly different logits, so the match is not a constant's.
  assert np.abs(expected[0] - expected[1]).max() > 0.05
  probabilities = loaded[name][f"{runtime}_probabilities"]
  np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
  np.testing.assert_allclose(probabilities, keras.ops.softmax(expected).numpy(), atol=1e-5)


@pytest.mark.parametrize("name", ["rgb", "flow"])
def test_metadata_travels_with_both_files(loaded, name):
  onnx_meta = {k: json.loads(v) for k, v in json.loads(str(loaded[name]["onnx_meta"])).items()}
  sidecar = json.loads(str(loaded[name]["sidecar"]))
  for meta, export_format in ((onnx_meta, "onnx"), (sidecar, "litert")):
    assert meta["labels"] == LABELS
    assert meta["clip_geometry"]["num_frames"] == FRAMES
    assert meta["clip_geometry"]["crop_size"] == CROP
    assert meta["clip_geometry"]["modality"] == name
    assert meta["d3d_export"]["format"] == export_format
    assert meta["d3d_export"]["input_dtype"] == "uint8"


def test_litert_batch_axis_resizes(exported, loaded):
  np.testing.assert_allclose(loaded["rgb"]["lite_one"][0], exported["rgb"]["expected"][0],
                             atol=1e-4, rtol=0)


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_runtimes_load_and_predictor(exported, fmt):
  path = exported["rgb"][fmt]
  model = runtimes.load(path)
  assert model.labels == LABELS and model.clip_shape == (FRAMES, CROP, CROP, 3)
  np.testing.assert_allclose(model.logits(exported["rgb"]["clips"]), exported["rgb"]["expected"],
                             atol=1e-4, rtol=0)
  unit = processors.normalize_rgb(exported["rgb"]["clips"]).numpy()
  np.testing.assert_allclose(model.logits_from_unit(unit), exported["rgb"]["expected"],
                             atol=1e-4, rtol=0)
  with pytest.raises(ValueError, match=r"takes uint8 clips of shape \[batch, 8, 32, 32, 3\]"):
    model.logits(np.zeros((1, 4, CROP, CROP, 3), np.uint8))
  # predict: raw frames are centre-cropped and resized to uint8 before the runtime.
  predictor = predict_lib.load_predictor(path)
  assert predictor.labels == LABELS and predictor.num_frames == FRAMES
  frames, _ = video_io.read_video(sample_clip("bikes.mp4"), short_side=48, max_frames=FRAMES)
  clips = portable.crop_clips_uint8(frames[None], CROP, 0.875).numpy()
  np.testing.assert_allclose(predictor.logits_fn(frames[None]),
                             keras_logits(exported["rgb"]["model"], clips), atol=1e-4, rtol=0)
  with pytest.raises(predict_lib.PredictError, match="--crop_size is fixed"):
    predict_lib.load_predictor(path, crop_size=64)


@pytest.mark.parametrize("quantize", ["float16", "dynamic_int8"])
def test_quantized_litert_stays_close(exported, tmp_path, quantize):
  model, clips = exported["rgb"]["model"], exported["rgb"]["clips"]
  path = litert_export.export(model, LABELS, str(tmp_path / "q.tflite"), quantize=quantize)
  loaded_model = runtimes.load(path)
  float_size = os.path.getsize(exported["rgb"]["tflite"])
  # Smaller weights (a tiny model: the graph itself is a good part of the file).
  assert os.path.getsize(path) < 0.8 * float_size
  got, expected = loaded_model.logits(clips), exported["rgb"]["expected"]
  scale = np.abs(expected).max()
  assert np.abs(got - expected).max() < 0.1 * scale
  assert json.load(open(path + ".json"))["d3d_export"]["quantize"] == quantize


def test_int8_litert_calibrated_on_records_agrees_with_float32(exported, tmp_path):
  model = exported["rgb"]["model"]
  model_path = str(tmp_path / "student.keras")
  model.save(model_path)
  files = records_fixture.write_shards(str(tmp_path), num_shards=2, videos_per_shard=4,
                                       num_frames=FRAMES + 2, with_flow=False)
  clips_of = litert_export.representative_clips(files, model.clip_geometry)
  first = next(iter(clips_of()))[0]
  assert first.dtype == np.uint8 and first.shape == (1, FRAMES, CROP, CROP, 3)
  path = litert_export.export_from_files(model_path, None, str(tmp_path / "q.tflite"),
                                         quantize="int8", representative_files=files)
  # Clips like the calibration ones (int8 ranges are fitted to them): the records' views.
  test = np.concatenate([c[0] for c in clips_of()])
  assert len(test) == 8
  got, expected = runtimes.load(path).logits(test), keras_logits(model, test)
  assert np.abs(expected[:, None] - expected[None]).max() > 0.05  # The clips differ.
  assert (got.argmax(-1) == expected.argmax(-1)).mean() >= 7 / 8
  assert np.abs(got - expected).max() < 0.15 * np.abs(expected).max()


def test_litert_refuses_an_op_without_builtin_and_writes_nothing(tmp_path):
  inputs = keras.Input((4, 8, 8, 3))
  pooled = keras.layers.AveragePooling3D((2, 2, 2))(keras.layers.Dense(4)(inputs))
  model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(pooled)))
  output = str(tmp_path / "m.tflite")
  with pytest.raises(ValueError, match=r"^litert: cannot convert .*tf\.AvgPool3D has no LiteRT "
                     r"builtin") as info:
    litert_export.export(model, LABELS, output, num_frames=4, crop_size=8)
  assert "\n" not in str(info.value)
  assert os.listdir(tmp_path) == []


def test_bad_requests_are_one_line_errors(exported, tmp_path):
  model = exported["rgb"]["model"]
  with pytest.raises(ValueError, match=r"--output='.*m\.onnx': a litert export is a \.tflite"):
    litert_export.export(model, LABELS, str(tmp_path / "m.onnx"))
  with pytest.raises(ValueError, match="--quantize=int8 calibrates on clips"):
    litert_export.export(model, LABELS, str(tmp_path / "m.tflite"), quantize="int8")
  with pytest.raises(FileExistsError, match="pass --overwrite"):
    onnx_export.export(model, LABELS, exported["rgb"]["onnx"])
  with pytest.raises(ValueError, match="label map has 2 classes"):
    onnx_export.export(model, LABELS[:2], str(tmp_path / "m.onnx"))
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("module, suffix, extra", [
    ("onnxruntime", ".onnx", r"pip install -e \.\[onnx\]"),
    ("ai_edge_litert", ".tflite", r"pip install -e \.\[litert\]"),
])
def test_missing_runtime_names_the_extra(exported, monkeypatch, module, suffix, extra):
  monkeypatch.setitem(sys.modules, module, None)  # `import` of a None entry fails.
  path = exported["rgb"]["onnx" if suffix == ".onnx" else "tflite"]
  with pytest.raises(runtimes.RuntimeMissingError, match=extra):
    runtimes.load(path)
