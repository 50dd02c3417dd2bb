"""The linear probe: layers, serialization, and that it learns a known linear encoding of flow."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.probing import probe_lib
from d3d_tf.probing.decoder import FlowDecoder, ResizeVideo, Standardize
from d3d_tf.probing.trainer import FlowProbeTrainer


def test_standardize_bounds_amplification_of_quiet_channels():
  layer = Standardize()
  layer.build((None, 3))
  # Mean variance 100 / 3, so the floor is 1 / 3: the quiet channels' scale is sqrt(3), not
  # 1e12 or infinity.
  layer.set_statistics([1.0, 0.0, 5.0], [100.0, 1e-24, 0.0])
  out = np.asarray(layer(np.array([[11.0, 1.0, 6.0]], np.float32)))
  floor = 100.0 / 3 / 100
  np.testing.assert_allclose(out, [[10.0 / np.sqrt(100.0 + floor), 1 / np.sqrt(floor),
                                    1 / np.sqrt(floor)]], rtol=1e-5)
  # Scale-free: features 1e-15 times smaller are standardized the same.
  layer.set_statistics([1e-15, 0.0, 5e-15], [1e-28, 1e-54, 0.0])
  np.testing.assert_allclose(layer(np.array([[11e-15, 1e-15, 6e-15]], np.float32)), out,
                             rtol=1e-4)


def test_resize_video_shapes_and_linearity():
  x = np.ones((2, 2, 3, 3, 4), np.float32) * np.arange(4, dtype=np.float32)
  y = np.asarray(ResizeVideo((4, 6, 6))(x))
  assert y.shape == (2, 4, 6, 6, 4)
  np.testing.assert_allclose(y, np.ones_like(y) * np.arange(4), atol=1e-5)  # Constant stays.
  same = np.random.default_rng(0).normal(size=(1, 4, 6, 6, 2)).astype(np.float32)
  np.testing.assert_allclose(ResizeVideo((4, 6, 6))(same), same, atol=1e-5)


def test_decoder_round_trip(tmp_path):
  decoder = FlowDecoder(8, (2, 4, 4), name="probe")
  decoder.standardize.set_statistics(np.arange(8.0), np.arange(1.0, 9.0))
  decoder.flow.kernel.assign(np.random.default_rng(0).normal(size=(1, 1, 1, 8, 2)))
  assert FlowDecoder.from_config(decoder.get_config()).get_config() == decoder.get_config()
  x = np.random.default_rng(1).normal(size=(2, 1, 2, 2, 8)).astype(np.float32)
  path = str(tmp_path / "decoder.keras")
  decoder.save(path)
  loaded = keras.saving.load_model(path)
  np.testing.assert_allclose(loaded(x), decoder(x), rtol=1e-5, atol=1e-6)
  assert decoder(x).shape == (2, 2, 4, 4, 2)
  with pytest.raises(ValueError, match="target_shape"):
    FlowDecoder(8, (2, 4))


def _synthetic_clips(num, seed):
  """Pipeline-like batches: random flow (pixels / bound) and RGB that is independent noise."""
  rng = np.random.default_rng(seed)
  flow = rng.normal(scale=0.1, size=(num, 4, 8, 8, 2)).astype(np.float32)
  rgb = rng.uniform(-1, 1, size=(num, 4, 8, 8, 3)).astype(np.float32)
  return tf.data.Dataset.from_tensor_slices(({"flow": flow, "rgb": rgb}, np.zeros(num, np.int32)))


def _encoder(channels, name):
  """A frozen 'network' whose features are a fixed linear map of the flow target's cells."""
  inputs = keras.Input((None, None, None, channels))
  pooled = keras.layers.AveragePooling3D((2, 2, 2))(inputs)
  dense = keras.layers.Dense(6, kernel_initializer=keras.initializers.RandomNormal(seed=3),
                             bias_initializer="ones")
  model = keras.Model(inputs, {"linear": dense(pooled)}, name=name)
  model.trainable = False
  return model


def test_probe_learns_linear_encoding_and_not_noise():
  extractors = {"encodes_flow": _encoder(2, "a"), "blind": _encoder(3, "b")}
  decoders = {(m, "linear"): FlowDecoder(6, (2, 4, 4)) for m in extractors}
  trainer = FlowProbeTrainer(extractors, {"encodes_flow": "flow", "blind": "rgb"}, decoders,
                             flow_bound=20.0, space_stride=2)
  optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.05, 150))
  trainer.compile(optimizer=optimizer, jit_compile=False)
  train = _synthetic_clips(64, 0).repeat().batch(16)
  probe_lib.fit_statistics(trainer, train, 2)
  trainer.fit(train, epochs=1, steps_per_epoch=150, verbose=0)
  meter, _ = probe_lib.evaluate(trainer, _synthetic_clips(32, 1).batch(16), num_panels=0)
  result = meter.result()
  # 2 px per component, averaged over 2x2x2 cells: about 0.7 px per component.
  assert result["zero_epe"] > 0.5
  assert result["encodes_flow/linear"] < 0.03 * result["zero_epe"]
  assert result["blind/linear"] > 0.95 * min(result["zero_epe"], result["mean_epe"])
