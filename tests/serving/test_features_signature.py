"""The export's `features` signature: uint8 frames in, the pooled embedding out, equal to the
Keras model's final endpoint on the same preprocessed clip, from a Python without d3d_tf."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.serving import export_lib
from d3d_tf.serving import preprocess
from tests.serving.test_export_serving import CROP, FRAMES, LABELS, tiny_model

_CHILD = textwrap.dedent(r"""
  import json, sys
  import numpy as np
  import tensorflow as tf
  export_dir, data, out = sys.argv[1:4]
  m = tf.saved_model.load(export_dir)
  signature = m.signatures["features"]
  result = signature(frames=tf.constant(np.load(data)))
  np.save(out, result["features"].numpy())
  print(json.dumps({"outputs": sorted(result),
                    "d3d_imported": any(k.startswith("d3d_tf") for k in sys.modules)}))
""")


@pytest.fixture(scope="module")
def model_and_clips():
  model = tiny_model(seed=2)
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, (2, FRAMES, 40, 56, 3), np.uint8)
  embedding = model.backbone(preprocess.preprocess_frames(frames, CROP), training=False)
  expected = embedding["Mixed_3c"].numpy().mean((1, 2, 3))  # The final endpoint, pooled.
  return model, frames, expected


def test_features_signature_is_the_pooled_final_endpoint(model_and_clips, tmp_path):
  model, frames, expected = model_and_clips
  out = export_lib.export(model, LABELS, str(tmp_path / "models"), "d3d", 1, crop_size=CROP,
                          num_frames=FRAMES, warmup_size=(40, 56))
  np.save(tmp_path / "frames.npy", frames)
  env = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run([sys.executable, "-c", _CHILD, out, str(tmp_path / "frames.npy"),
                         str(tmp_path / "features.npy")],
                        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  status = json.loads(proc.stdout.strip().splitlines()[-1])
  assert status == {"outputs": ["features"], "d3d_imported": False}
  served = np.load(tmp_path / "features.npy")
  assert served.shape == expected.shape == (2, model.backbone.output["Mixed_3c"].shape[-1])
  np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-5)
  assert np.ptp(expected) > 1e-2  # Not a comparison between near-zeros.
  with open(os.path.join(out, "assets.extra", export_lib.METADATA_FILE)) as f:
    assert "features" in json.load(f)["signatures"]


def test_float16_export_serves_features_from_its_half_weights(model_and_clips, tmp_path):
  model, frames, expected = model_and_clips
  out = export_lib.export(model, LABELS, str(tmp_path), "d3d", 1, crop_size=CROP,
                          num_frames=FRAMES, quantize="float16", warmup_size=(40, 56))
  served = tf.saved_model.load(out).signatures["features"](frames=tf.constant(frames))
  np.testing.assert_allclose(served["features"].numpy(), expected, rtol=0.02, atol=0.02)
