"""probe_lib and the CLI on tiny records: frozen models, pixel units, outputs, resume, errors."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.data import records
from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier
from d3d_tf.probing import features as features_lib
from d3d_tf.probing import probe_lib
from d3d_tf.probing.decoder import FlowDecoder
from d3d_tf.probing.trainer import FlowProbeTrainer
from tests.training import tiny_data

ENDPOINTS = ("Conv2d_2c_3x3", "Mixed_3c")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return tiny_data.write_tiny_records(str(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def flow_dir(tmp_path_factory):
  """A model dir like d3d_tf.train's: an (untrained) flow S3D-G cut after Mixed_3c, storing its
  clip geometry, and the flags it used."""
  model_dir = tmp_path_factory.mktemp("flow")
  keras.utils.set_random_seed(0)
  backbone = S3DGBackbone(input_channels=2, depth_multiplier=0.125, final_endpoint="Mixed_3c")
  geometry = ClipGeometry(num_frames=8, crop_size=32, modality="flow", flow_bound=20.0)
  S3DGClassifier(backbone, 3, clip_geometry=geometry).save(str(model_dir / "student.keras"))
  (model_dir / "flags.txt").write_text("--stream=flow\n--num_frames=8\n--crop_size=32\n"
                                       "--min_area=0.5\n--depth_multiplier=0.125\n")
  return str(model_dir)


def _clips(batch=2, frames=8, size=32, seed=0):
  rng = np.random.default_rng(seed)
  return {"flow": rng.normal(scale=0.1, size=(batch, frames, size, size, 2)).astype(np.float32)}


def test_frozen_backbone_is_unchanged_by_probing():
  backbone = S3DGBackbone(input_channels=2, depth_multiplier=0.125)
  # Non-trivial batch-norm statistics: a probe that ran the backbone in training mode would
  # move them.
  features_lib.calibrate_batch_norm(backbone, [_clips(seed=9)["flow"]])
  before = [np.array(w) for w in backbone.weights]
  extractor = features_lib.frozen_extractor(backbone, ENDPOINTS, "flow")
  decoders = {("flow", e): FlowDecoder(extractor.output[e].shape[-1], (4, 8, 8))
              for e in ENDPOINTS}
  trainer = FlowProbeTrainer({"flow": extractor}, {"flow": "flow"}, decoders, 20.0, 4)
  trainer.compile(optimizer=keras.optimizers.Adam(0.05), jit_compile=False)
  dataset = tf.data.Dataset.from_tensors((_clips(), np.zeros(2, np.int32))).repeat()
  probe_lib.fit_statistics(trainer, dataset, 1)
  trainer.fit(dataset, epochs=1, steps_per_epoch=3, verbose=0)
  for a, b in zip(before, backbone.weights):
    np.testing.assert_array_equal(a, np.array(b), err_msg=b.path)
  assert not trainer.extractors["flow"].trainable_weights
  assert all(np.abs(d.flow.kernel.numpy()).max() > 0 for d in decoders.values())


def test_calibrate_batch_norm_sets_statistics_only():
  backbone = S3DGBackbone(input_channels=3, depth_multiplier=0.125, final_endpoint="Mixed_3b")
  trainable = [np.array(w) for w in backbone.trainable_weights]
  bn = backbone.get_layer("Conv2d_1a_7x7").bn
  x = np.random.default_rng(0).uniform(-1, 1, (2, 4, 16, 16, 3)).astype(np.float32)
  # Through the frozen extractor the probe uses: its batch norms are frozen too.
  extractor = features_lib.frozen_extractor(backbone, ["Mixed_3b"])
  assert features_lib.calibrate_batch_norm(extractor, [x, x]) == 2
  assert bn.momentum == pytest.approx(0.999) and not bn.trainable  # Restored.
  assert np.abs(bn.moving_mean.numpy()).max() > 0
  # The mean of two identical batches' statistics is their statistics: training-mode output.
  np.testing.assert_allclose(backbone(x, training=False)["Mixed_3b"],
                             backbone(x, training=True)["Mixed_3b"], rtol=1e-3, atol=1e-4)
  for a, b in zip(trainable, backbone.trainable_weights):
    np.testing.assert_array_equal(a, np.array(b))


def test_model_names_and_extractor_errors(tmp_path):
  assert features_lib.model_names(["runs/s/rgb", "runs/s/d3d/student.keras", "x/flow.keras"]) \
      == ["rgb", "d3d", "flow"]
  assert features_lib.model_names(["a/rgb", "b/rgb"]) == ["a/rgb", "b/rgb"]
  backbone = S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3c")
  with pytest.raises(ValueError, match=r"--endpoints \['Mixed_4f'\] are not endpoints"):
    features_lib.frozen_extractor(backbone, ["Mixed_3c", "Mixed_4f"], "rgb")
  with pytest.raises(FileNotFoundError, match="without student.keras"):
    features_lib.load_backbone(str(tmp_path))


def test_geometry_and_endpoints_default_to_what_the_model_has(tmp_path):
  model_dir = tmp_path / "old"
  model_dir.mkdir()
  (model_dir / "flags.txt").write_text("--num_frames=6\n--crop_size=48\n--min_area=0.3\n")
  config = probe_lib.ProbeConfig(train_files="t", eval_files="e", output_dir="o",
                                 models=(str(model_dir),))
  # A model that stores no geometry (an older file): its model dir's flags.txt.
  assert probe_lib._clip_geometry(config, None) == {
      "num_frames": 6, "stride": 1, "crop_size": 48, "min_area": 0.3}
  stored = ClipGeometry(num_frames=8, crop_size=32, stride=2)
  assert probe_lib._clip_geometry(config, stored) == {
      "num_frames": 8, "stride": 2, "crop_size": 32, "min_area": 0.3}
  cut = S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_4b")
  full = S3DGBackbone(depth_multiplier=0.125)
  assert features_lib.default_endpoints([full]) == list(features_lib.DEFAULT_ENDPOINTS)
  assert features_lib.default_endpoints([full, cut]) == ["Conv2d_2c_3x3", "Mixed_3c"]


@pytest.mark.parametrize("overrides, match", [
    ({"models": (), "random_init": False}, "Nothing to probe"),
    ({"endpoints": ("Mixed_9z",)}, r"--endpoints \['Mixed_9z'\] are not S3D-G endpoints"),
    ({"steps": 10, "checkpoint_every": 3}, "multiple of --checkpoint_every"),
])
def test_validate_names_the_flag(overrides, match):
  values = dict(train_files="t", eval_files="e", output_dir="o", random_init=True)
  values.update(overrides)
  with pytest.raises(ValueError, match=match):
    probe_lib.ProbeConfig(**values).validate()


def _expected_zero_epe():
  """Tiny val clips move uniformly (tiny_data.MOTIONS); stored quantized at bound 20, then the
  0.875 centre crop of 40 px (35 px) is resized to 32 px, scaling the flow by 32 / 35."""
  flows = [records.dequantize_flow(records.quantize_flow(np.array(m, np.float32)), 20.0)
           for m in tiny_data.MOTIONS]
  return float(np.mean([np.hypot(*f) for f in flows])) * 32 / 35, flows


def _probe_cli(args):
  """Runs `python -m d3d_tf.probe` in a subprocess: its `--model` flag would clash with
  `d3d_tf.predict`'s in pytest's one process. Returns the completed process."""
  return subprocess.run([sys.executable, "-m", "d3d_tf.probe"] + args, capture_output=True,
                        text=True, check=False,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


@pytest.mark.slow
def test_cli_end_to_end_then_resume(data_dir, flow_dir, tmp_path):
  out = tmp_path / "probe"
  args = [f"--model={flow_dir}", "--random_init", f"--output_dir={out}",
          f"--train_files={data_dir}/train-*.tfrecord", f"--eval_files={data_dir}/val-*.tfrecord",
          "--steps=30", "--checkpoint_every=15",  # Endpoints: those the cut model has.
          "--batch_size=4", "--statistics_batches=2", "--num_panels=2"]
  first = _probe_cli(args)
  assert first.returncode == 0, first.stderr[-3000:]
  # The run-wide bar, one whole line per update in a pipe; the statistics' bar on stderr.
  assert "probing 30/30 steps 100% | " in first.stdout and "\r" not in first.stdout
  assert "probe statistics 2/2 batches 100% | " in first.stderr, first.stderr[-3000:]
  for name in ("probe.json", "probe_epe.png", "probe_flow.png", "flags.txt"):
    assert os.path.getsize(out / name) > 0, name
  report = json.loads((out / "probe.json").read_text())
  name = os.path.basename(flow_dir)
  assert set(report) == {name, "random_init", "_meta"}
  meta = report["_meta"]
  assert meta["models"][name]["input"] == "flow" and meta["models"]["random_init"]["input"] == "rgb"
  # Clip geometry stored in the model (min_area from its flags.txt); every endpoint scored on
  # the T/2 x S/4 grid.
  assert (meta["num_frames"], meta["crop_size"], meta["min_area"]) == (8, 32, 0.5)
  assert meta["endpoints"] == list(ENDPOINTS)
  assert meta["target_shape"] == [4, 8, 8] and meta["steps"] == 30 and meta["eval_clips"] == 3
  # Pixel units: the bound is undone and the crop's resize applied.
  zero_epe, flows = _expected_zero_epe()
  mean_epe = np.mean([np.hypot(*(f * 32 / 35 - meta["mean_flow"])) for f in flows])
  for model in (name, "random_init"):
    for e in ENDPOINTS:
      scores = report[model][e]
      assert scores["zero_epe"] == pytest.approx(zero_epe, rel=1e-4)
      assert scores["mean_epe"] == pytest.approx(mean_epe, rel=1e-4)
      assert np.isfinite(scores["epe"]) and np.isfinite(scores["train_epe"])
  # A network that sees flow carries it; a random RGB network barely does.
  flow_epe = report[name]["Conv2d_2c_3x3"]["epe"]
  assert flow_epe < 0.75 * report["random_init"]["Conv2d_2c_3x3"]["epe"]
  assert flow_epe < 0.75 * mean_epe

  # Relaunched: it restores the last checkpoint, trains nothing, and scores the same probes.
  second = _probe_cli(args)
  assert second.returncode == 0, second.stderr[-3000:]
  assert "step 30 of 30" in second.stdout
  again = json.loads((out / "probe.json").read_text())
  for model in (name, "random_init"):
    for e in ENDPOINTS:
      assert again[model][e] == pytest.approx(report[model][e], rel=1e-5)


def test_cli_bad_input_one_line_exit_2(data_dir, tmp_path):
  result = _probe_cli([f"--model={tmp_path / 'missing'}", f"--output_dir={tmp_path / 'o'}",
                       f"--train_files={data_dir}/train-*.tfrecord",
                       f"--eval_files={data_dir}/val-*.tfrecord"])
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
      f"probe: error: --model {str(tmp_path / 'missing')!r} does not exist.")
