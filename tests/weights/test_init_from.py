"""Fine-tuning starts: weights carried over, fresh or kept head, cross-modality, freezing."""

import keras
import numpy as np
import pytest

from d3d_tf.training import train_lib
from d3d_tf.models import S3DGBackbone, S3DGClassifier
from d3d_tf.weights.init_from import build_from_source, cross_modality_kernel, load_source
from d3d_tf.weights.slim_checkpoint import save_slim_checkpoint
from tests.training import tiny_data


def _source(classes=7, **kwargs):
  keras.utils.set_random_seed(3)
  model = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125, **kwargs), classes)
  rng = np.random.default_rng(0)
  for variable in model.weights:  # Not the init values, so a copy is visible.
    if "moving_variance" not in variable.path:
      variable.assign(variable.numpy() + rng.normal(0, 0.05, variable.shape))
  return model


def _backbone_weights(model):
  return {v.path: v.numpy() for v in model.backbone.weights}


def test_new_head_and_same_backbone_at_step_zero():
  source = _source(7)
  model, notes = build_from_source(source, 3, 3)
  assert "fresh head (7 classes in the source, 3 here)" in notes
  expected = _backbone_weights(source)
  for path, value in _backbone_weights(model).items():
    np.testing.assert_array_equal(value, expected[path], err_msg=path)
  assert model.get_layer("Logits_Conv2d_0c_1x1").kernel.shape[-1] == 3


def test_head_kept_unless_reset():
  source = _source(3)
  kept, _ = build_from_source(source, 3, 3)
  clip = np.random.default_rng(1).uniform(-1, 1, (1, 8, 32, 32, 3)).astype(np.float32)
  np.testing.assert_allclose(kept(clip, training=False), source(clip, training=False),
                             atol=1e-6)
  reset, notes = build_from_source(source, 3, 3, reset_head=True)
  assert "fresh head (--reset_head)" in notes
  assert not np.allclose(reset.get_layer("Logits_Conv2d_0c_1x1").kernel,
                         source.get_layer("Logits_Conv2d_0c_1x1").kernel)


def test_rgb_start_of_a_flow_model_averages_the_first_conv():
  source = _source(3)
  flow, notes = build_from_source(source, 2, 3)
  assert flow.backbone.input_channels == 2 and any("averaged" in n for n in notes)
  kernel = source.backbone.get_layer("Conv2d_1a_7x7").conv.kernel.numpy()
  got = flow.backbone.get_layer("Conv2d_1a_7x7").conv.kernel.numpy()
  np.testing.assert_allclose(got, np.repeat(kernel.mean(axis=3, keepdims=True), 2, axis=3),
                             rtol=1e-6)
  assert cross_modality_kernel(got, 3).shape == kernel.shape  # And the reverse.


def test_freeze_until_stops_training_there_and_keeps_bn_in_inference():
  model, _ = build_from_source(_source(3), 3, 3, freeze_until="Mixed_3b")
  trainable = {v.path.split("/")[0] for v in model.trainable_weights}
  assert "Mixed_3b" not in trainable and "Conv2d_1a_7x7" not in trainable
  assert "Mixed_3c" in trainable
  before = _backbone_weights(model)
  model.compile(optimizer=keras.optimizers.SGD(0.1),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  clips = np.random.default_rng(2).uniform(-1, 1, (4, 8, 32, 32, 3)).astype(np.float32)
  labels = np.array([0, 1, 2, 0])
  losses = [float(model.train_on_batch(clips, labels)) for _ in range(8)]
  assert losses[-1] < losses[0]
  after = _backbone_weights(model)
  for path, value in before.items():  # Frozen BN statistics do not move either.
    if path.startswith(("Conv2d", "MaxPool", "Mixed_3b")):
      np.testing.assert_array_equal(after[path], value, err_msg=path)
  assert not np.array_equal(after["Mixed_3c/Branch_0_Conv2d_0a_1x1/bn/moving_mean"],
                            before["Mixed_3c/Branch_0_Conv2d_0a_1x1/bn/moving_mean"])


@pytest.mark.parametrize("bad,match", [
    ({"freeze_until": "Mixed_9z"}, "--freeze_until must be one of"),
    ({"freeze_until": "Mixed_5c"}, "past the source's last block Mixed_4f"),
])
def test_bad_freeze_until(bad, match):
  with pytest.raises(ValueError, match=match):
    build_from_source(_source(3, final_endpoint="Mixed_4f"), 3, 3, **bad)


def test_load_source_reads_keras_and_slim_and_refuses_others(tmp_path):
  source = _source(3)
  source.save(str(tmp_path / "m.keras"))
  prefix = save_slim_checkpoint(source, str(tmp_path / "model.ckpt"))
  for path in (str(tmp_path / "m.keras"), prefix, str(tmp_path)):
    assert load_source(path).count_params() == source.count_params()
  with pytest.raises(FileNotFoundError, match="neither a .keras file"):
    load_source(str(tmp_path / "nothing"))


@pytest.mark.slow
def test_train_init_from_a_converted_checkpoint(tmp_path):
  data_dir = tiny_data.write_tiny_records(str(tmp_path / "data"))
  source = _source(400)
  prefix = save_slim_checkpoint(source, str(tmp_path / "k400.ckpt"))
  config = train_lib.TrainConfig(**tiny_data.tiny_flags(
      data_dir, str(tmp_path / "run"), "rgb", init_from=prefix, freeze_until="Mixed_3b",
      train_steps=2), verbose=0)
  train_lib.train(config)
  student = keras.saving.load_model(str(tmp_path / "run" / "student.keras"))
  assert student.outputs[0].shape[-1] == tiny_data.NUM_CLASSES
  frozen = student.backbone.get_layer("Mixed_3b").branch_0_0a.conv.kernel.numpy()
  np.testing.assert_array_equal(
      frozen, source.backbone.get_layer("Mixed_3b").branch_0_0a.conv.kernel.numpy())
