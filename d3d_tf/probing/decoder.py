"""The probe's decoder: an affine map from one endpoint's features to flow on the target grid.

Deliberately minimal, so that the probe measures the motion the features carry and not the
motion a decoder could compute from them: standardize each channel (fixed statistics, so
random-init features at any scale are probed as fairly as trained ones), a 1x1x1 conv to
(dx, dy), and a resize to the target grid. Each step is affine, so a prediction at a target
position is a fixed linear combination of nearby feature vectors: a linear probe.
"""

from typing import Sequence

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="d3d_tf")
class Standardize(keras.layers.Layer):
  """`(x - mean) * scale` per channel, with fixed statistics set once by `set_statistics`.

  Unlike batch norm the statistics do not move, so the decoder is the same affine map in
  training and evaluation. `scale` (1 / std) is stored rather than a variance: features of a
  deep random-init network can be ~1e-20, whose variance underflows float32.
  """

  def build(self, input_shape):
    channels = input_shape[-1]
    self.mean = self.add_weight(shape=(channels,), initializer="zeros", trainable=False,
                                name="mean")
    self.scale = self.add_weight(shape=(channels,), initializer="ones", trainable=False,
                                 name="scale")

  def call(self, inputs):
    inputs = ops.cast(inputs, self.compute_dtype)
    return (inputs - self.mean) * self.scale

  def set_statistics(self, mean, variance, relative_floor: float = 1e-2):
    """Sets the mean and 1 / sqrt(variance + floor), floor = relative_floor x mean variance.

    The floor is relative, so features at any scale are treated alike, and it bounds how much
    a channel that barely varied in the statistics' sample is amplified (to 1 / sqrt(floor)):
    such a channel would otherwise blow up on clips where it does vary.
    """
    mean = np.asarray(mean, np.float64)
    variance = np.maximum(np.asarray(variance, np.float64), 0.0)
    floor = relative_floor * float(variance.mean()) if variance.size else 0.0
    scale = 1.0 / np.sqrt(variance + floor) if floor > 0 else np.zeros_like(variance)
    self.mean.assign(mean.astype(np.float32))
    self.scale.assign(scale.astype(np.float32))


@keras.saving.register_keras_serializable(package="d3d_tf")
class ResizeVideo(keras.layers.Layer):
  """Resizes [B, t, h, w, C] to [B, T, H, W, C]: bilinear in space, then linear in time.

  Half-pixel centres (each input cell is taken to cover an equal share of the clip);
  antialiased, so an endpoint finer than the target (`Conv2d_1a_7x7`) is averaged, not
  subsampled. Both passes are linear.

  Args:
    size: tuple of 3 ints. Output (T, H, W).
    **kwargs: Standard layer arguments.
  """

  def __init__(self, size, **kwargs):
    super().__init__(**kwargs)
    self.size = tuple(int(s) for s in size)

  def call(self, inputs):
    t, h, w = self.size
    shape = ops.shape(inputs)
    channels = inputs.shape[-1]
    x = ops.reshape(inputs, (-1, shape[2], shape[3], channels))
    x = ops.image.resize(x, (h, w), interpolation="bilinear", antialias=True)
    # Time as the height of a [t, H * W] image: a 1-D resize along t.
    x = ops.reshape(x, (shape[0], shape[1], h * w, channels))
    x = ops.image.resize(x, (t, h * w), interpolation="bilinear", antialias=True)
    return ops.reshape(x, (shape[0], t, h, w, channels))

  def compute_output_shape(self, input_shape):
    return (input_shape[0],) + self.size + (input_shape[-1],)

  def get_config(self):
    config = super().get_config()
    config["size"] = self.size
    return config


@keras.saving.register_keras_serializable(package="d3d_tf")
class FlowDecoder(keras.Model):
  """Linear probe: one endpoint's features [B, t, h, w, C] -> flow [B, T, H, W, 2] in pixels.

  Standardize (statistics set from training features before the probe trains), a 1x1x1 conv
  to 2 channels, then `ResizeVideo` to the target grid. Resizing the 2-channel prediction
  equals predicting from resized features (both steps are linear) and is C/2 times cheaper.
  The conv starts at zero weights, so with its bias set to the mean flow an untrained probe is
  the mean-flow baseline. Runs in float32 whatever the backbone's dtype policy.

  Args:
    input_channels: int. Channels C of the endpoint.
    target_shape: tuple of 3 ints. The target grid (T, H, W) (`targets.target_shape`).
    **kwargs: Standard model arguments (`name`, `trainable`).

  Examples:
  ```python
  decoder = FlowDecoder(input_channels=48, target_shape=(8, 12, 12), name="Mixed_3c")
  flow = decoder(keras.random.normal((2, 8, 6, 6, 48)))  # (2, 8, 12, 12, 2)
  ```
  """

  def __init__(self, input_channels, target_shape: Sequence[int], **kwargs):
    if input_channels < 1:
      raise ValueError(f"input_channels must be >= 1. Received: input_channels={input_channels}")
    target_shape = tuple(int(s) for s in target_shape)
    if len(target_shape) != 3 or min(target_shape) < 1:
      raise ValueError(f"target_shape must be 3 positive ints (T, H, W). Received: "
                       f"target_shape={target_shape}")
    kwargs.pop("dtype", None)

    # === Layers ===
    standardize = Standardize(name="standardize", dtype="float32")
    conv = keras.layers.Conv3D(2, (1, 1, 1), kernel_initializer="zeros", name="flow",
                               dtype="float32")
    resize = ResizeVideo(target_shape, name="resize", dtype="float32")

    # === Functional Model ===
    inputs = keras.Input(shape=(None, None, None, input_channels), name="features")
    outputs = resize(conv(standardize(inputs)))
    super().__init__(inputs=inputs, outputs=outputs, dtype="float32", **kwargs)

    # Attributes, so tf.train.Checkpoint tracks them (and probe code reaches them by name).
    self.standardize = standardize
    self.flow = conv

    # === Config ===
    self.input_channels = input_channels
    self.target_shape = target_shape

  def get_config(self):
    return {"name": self.name, "trainable": self.trainable,
            "input_channels": self.input_channels, "target_shape": self.target_shape}

  @classmethod
  def from_config(cls, config):
    return cls(**config)
