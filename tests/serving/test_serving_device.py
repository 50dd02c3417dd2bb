"""The export traces the serving device's conv/pool formulation: TF's 3D ops for "gpu", the CPU's
choice (here forced to 2D over frames) for "cpu"; both give the model's outputs."""

import collections
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.serving import export_lib
from d3d_tf.serving import preprocess
from tests.serving.test_export_serving import CROP, FRAMES, LABELS, tiny_model


def _op_counts(concrete):
  """Op type -> count in a loaded signature's graph and every function it calls."""
  graph_def = concrete.graph.as_graph_def()
  nodes = list(graph_def.node)
  for function in graph_def.library.function:
    nodes.extend(function.node_def)
  return collections.Counter(node.op for node in nodes)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
  root = tmp_path_factory.mktemp("devices")
  model = tiny_model()
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("D3D_TF_FRAME_OPS", "2d")  # What the CPU export traces (never timed in tests).
    dirs = {device: export_lib.export(model, LABELS, str(root), f"d3d_{device}", 1,
                                      crop_size=CROP, num_frames=FRAMES, warmup_size=(40, 56),
                                      serving_device=device)
            for device in export_lib.SERVING_DEVICES}
  frames = np.random.default_rng(0).integers(0, 256, (2, FRAMES, 40, 56, 3), dtype=np.uint8)
  expected = model(preprocess.preprocess_frames(frames, CROP), training=False).numpy()
  return dict(dirs=dirs, frames=frames, expected=expected)


@pytest.mark.parametrize("device,has_3d", [("gpu", True), ("cpu", False)])
def test_export_holds_the_serving_devices_ops_and_the_models_outputs(exports, device, has_3d):
  out = exports["dirs"][device]
  serve = tf.saved_model.load(out).signatures["serving_default"]
  counts = _op_counts(serve)
  # The logits' 1x1x1 conv is a stock Keras Conv3D in both; S3D-G's own are Conv3D or Conv2D.
  assert (counts["Conv3D"] > 1, counts["MaxPool3D"] > 0) == (has_3d, has_3d)
  assert (counts["Conv2D"] > 0, counts["MaxPool"] > 0) == (not has_3d, not has_3d)
  assert counts["Conv3D"] >= 1
  logits = serve(frames=tf.constant(exports["frames"]))["logits"].numpy()
  np.testing.assert_allclose(logits, exports["expected"], rtol=1e-4, atol=1e-4)
  with open(os.path.join(out, "assets.extra", export_lib.METADATA_FILE), encoding="utf-8") as f:
    assert json.load(f)["serving_device"] == device


def test_unknown_serving_device_is_refused(tmp_path):
  with pytest.raises(ValueError, match="serving_device must be one of cpu, gpu. Received: 'tpu'"):
    export_lib.export(tiny_model(), LABELS, str(tmp_path), "d3d", 1, crop_size=CROP,
                      num_frames=FRAMES, serving_device="tpu")
