"""The S3D-G backbone: a functional Keras model whose outputs are the reference's endpoints."""

import keras

from d3d_tf.models.frame_ops import FrameMaxPooling3D
from d3d_tf.models.s3dg_layers import (
    BN_EPSILON, BN_MOMENTUM, InceptionBlock3D, STConv3D, SymmetricMaxPooling3D)

# The endpoints of `s3dg_base`, in order.
ENDPOINTS = (
    "Conv2d_1a_7x7", "MaxPool_2a_3x3", "Conv2d_2b_1x1", "Conv2d_2c_3x3", "MaxPool_3a_3x3",
    "Mixed_3b", "Mixed_3c", "MaxPool_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
    "Mixed_4f", "MaxPool_5a_2x2", "Mixed_5b", "Mixed_5c")

# Inception blocks: Branch_0 0a, Branch_1 0a/0b, Branch_2 0a/0b, Branch_3 0b (s3dg.py's table).
INCEPTION_FILTERS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

# Max pools: (pool size, strides), SAME padding.
MAX_POOLS = {
    "MaxPool_2a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool_3a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool_4a_3x3": ((3, 3, 3), (2, 2, 2)),
    "MaxPool_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}

# Only these endpoints can start temporal convs or gating (the reference's valid blocks).
STARTABLE = ENDPOINTS[3:4] + tuple(name for name in ENDPOINTS if name.startswith("Mixed"))

VARIANTS = ("slim", "torchvision")
# torchvision's S3D normalises [0, 1] frames with these (its `VideoClassification` preset).
TORCHVISION_MEAN = (0.43216, 0.394666, 0.37645)
TORCHVISION_STD = (0.22803, 0.22145, 0.216989)
# Per variant: gating and the first conv's temporal kernel when the caller does not say.
_VARIANT_DEFAULTS = {"slim": (True, 3), "torchvision": (False, 7)}


@keras.saving.register_keras_serializable(package="d3d_tf")
class S3DGBackbone(keras.Model):
  """S3D-G, the gated separable 3D Inception network of Xie et al. (2018).

  Mirrors the TF-Slim reference `s3dg_base` layer for layer: a full first conv
  (`first_temporal_kernel_size` x 7 x 7, stride 2), separable 3D convs (1xkxk then kx1x1) from
  `temporal_conv_startat`, self-gating from `gating_startat` on every branch of every Inception
  block, batch norm (decay 0.999, epsilon 1e-3, no scale) after every conv but the temporal
  ones, which carry a bias instead; SAME padding throughout. Outputs are a dict of endpoints
  from `Conv2d_1a_7x7` up to `final_endpoint`. Input is `[batch, T, H, W, C]`, any T >= 1 and
  any H, W; the pipeline feeds RGB in [-1, 1] and flow in [-1, 1].

  `variant="torchvision"` is the layout of `torchvision.models.video.s3d` instead, so that its
  Kinetics-400 weights load exactly: a separable first conv (1x7x7 then 7x1x1), BN with a gamma
  after every conv including the temporal ones (no temporal bias), PyTorch's symmetric padding
  for the strided convs and pools, no gating, and torchvision's per-channel input normalisation
  as the first layer, so the model still takes [-1, 1] frames like every other in d3d_tf.

  Paper: "Rethinking Spatiotemporal Feature Learning", https://arxiv.org/abs/1712.04851.

  Args:
    input_channels: int. 3 for RGB, 2 for optical flow. Defaults to 3.
    gating: bool or None. `False` gives plain S3D (no self-gating anywhere). Defaults to the
      variant's: `True` for slim, `False` for torchvision.
    first_temporal_kernel_size: int or None. One of 1, 3, 5, 7. Defaults to the variant's: 3
      for slim, 7 for torchvision.
    temporal_conv_startat: str or None. First block with temporal convs; earlier blocks are 2D
      (1xkxk). `None` makes every block 2D. Defaults to `"Conv2d_2c_3x3"`.
    gating_startat: str or None. First block with self-gating. Defaults to `"Conv2d_2c_3x3"`.
    final_endpoint: str. Last endpoint built. Defaults to `"Mixed_5c"`.
    depth_multiplier: float. Scales every conv's channels, `max(int(d * m), min_depth)`.
      Defaults to 1.0.
    min_depth: int. Lower bound of channels when `depth_multiplier < 1`. Defaults to 16.
    bn_momentum: float. Defaults to 0.999.
    bn_epsilon: float. Defaults to 1e-3.
    sync_batch_norm: bool. Every batch-norm layer normalises a training batch by the
      statistics of the global batch, all-reduced over the replicas of the `tf.distribute`
      strategy (Keras' synchronized batch norm), so the result does not depend on the replica
      count; with one replica it is the same math as `False`, minus the fused kernel.
      `False` (the default): each replica normalises by its own share of the batch.
    variant: str. `"slim"` (TF-Slim's `s3dg.py`, the D3D release) or `"torchvision"`.
      Defaults to `"slim"`.
    input_mean, input_std: tuples of `input_channels` floats or None. Normalise the [-1, 1]
      input as `((x + 1) / 2 - mean) / std` first. Default: torchvision's for the torchvision
      variant with 3 channels, none otherwise.
    **kwargs: Standard model arguments (`name`, `dtype`, `trainable`).

  Examples:
  ```python
  backbone = S3DGBackbone(input_channels=2, depth_multiplier=0.25)
  features = backbone(keras.random.normal((1, 16, 112, 112, 2)))
  features["Mixed_5c"].shape  # (1, 2, 4, 4, 256)
  ```
  """

  def __init__(self, input_channels=3, gating=None, first_temporal_kernel_size=None,
               temporal_conv_startat="Conv2d_2c_3x3", gating_startat="Conv2d_2c_3x3",
               final_endpoint="Mixed_5c", depth_multiplier=1.0, min_depth=16,
               bn_momentum=BN_MOMENTUM, bn_epsilon=BN_EPSILON, variant="slim",
               input_mean=None, input_std=None, sync_batch_norm=False, **kwargs):
    if variant not in VARIANTS:
      raise ValueError(f"variant must be one of {VARIANTS}. Received: variant={variant!r}")
    default_gating, default_kernel = _VARIANT_DEFAULTS[variant]
    gating = default_gating if gating is None else bool(gating)
    if first_temporal_kernel_size is None:
      first_temporal_kernel_size = default_kernel
    if input_mean is None and input_std is None and variant == "torchvision" and (
        input_channels == 3):
      input_mean, input_std = TORCHVISION_MEAN, TORCHVISION_STD
    if (input_mean is None) != (input_std is None) or (input_mean is not None and not (
        len(input_mean) == len(input_std) == input_channels)):
      raise ValueError(
          f"input_mean and input_std need {input_channels} values each, or both None. "
          f"Received: input_mean={input_mean}, input_std={input_std}")
    if first_temporal_kernel_size not in (1, 3, 5, 7):
      raise ValueError(
          "first_temporal_kernel_size must be 1, 3, 5 or 7. Received: "
          f"first_temporal_kernel_size={first_temporal_kernel_size}")
    for arg, value in (("temporal_conv_startat", temporal_conv_startat),
                       ("gating_startat", gating_startat)):
      if value is not None and value not in STARTABLE:
        raise ValueError(f"{arg} must be None or one of {STARTABLE}. Received: {arg}={value!r}")
    if final_endpoint not in ENDPOINTS:
      raise ValueError(
          f"final_endpoint must be one of {ENDPOINTS}. Received: final_endpoint={final_endpoint!r}")
    if depth_multiplier <= 0:
      raise ValueError(
          f"depth_multiplier must be greater than zero. Received: depth_multiplier={depth_multiplier}")
    if input_channels < 1:
      raise ValueError(f"input_channels must be >= 1. Received: input_channels={input_channels}")
    dtype = kwargs.pop("dtype", None)

    def depth(channels):
      return max(int(channels * depth_multiplier), min_depth)

    torch_layout = variant == "torchvision"
    bn = {"bn_momentum": bn_momentum, "bn_epsilon": bn_epsilon, "dtype": dtype,
          "bn_scale": torch_layout, "temporal_batch_norm": torch_layout,
          "sync_batch_norm": bool(sync_batch_norm)}

    # === Layers ===
    layers = {}
    # Separable conv is slow as the first layer (s3dg.py), so Conv2d_1a_7x7 is a full conv;
    # torchvision's S3D makes it separable.
    layers["Conv2d_1a_7x7"] = STConv3D(
        depth(64), (first_temporal_kernel_size, 7, 7), strides=2, separable=torch_layout,
        padding="symmetric" if torch_layout else "same", name="Conv2d_1a_7x7", **bn)
    layers["Conv2d_2b_1x1"] = STConv3D(depth(64), (1, 1, 1), name="Conv2d_2b_1x1", **bn)
    temporal, gated = False, False
    for name in STARTABLE:
      temporal = temporal or name == temporal_conv_startat
      gated = gating and (gated or name == gating_startat)
      t = 3 if temporal else 1
      if name == "Conv2d_2c_3x3":
        layers[name] = STConv3D(
            depth(192), (t, 3, 3), separable=True, gating=gated, name=name, **bn)
      else:
        filters = tuple(depth(f) for f in INCEPTION_FILTERS[name])
        layers[name] = InceptionBlock3D(
            filters, temporal_kernel_size=t, gating=gated, name=name, **bn)
    for name, (pool_size, strides) in MAX_POOLS.items():
      if torch_layout:
        layers[name] = SymmetricMaxPooling3D(pool_size, strides, name=name, dtype=dtype)
      else:
        layers[name] = FrameMaxPooling3D(
            pool_size, strides=strides, padding="same", name=name, dtype=dtype)

    # === Functional Model ===
    inputs = keras.Input(shape=(None, None, None, input_channels), name="video")
    x = inputs
    if input_mean is not None:
      # ((x + 1) / 2 - mean) / std, written as Normalization's (x - m) / sqrt(v).
      x = keras.layers.Normalization(
          axis=-1, mean=[2.0 * m - 1.0 for m in input_mean],
          variance=[(2.0 * s) ** 2 for s in input_std], name="input_normalization",
          dtype=dtype)(x)
    endpoints = {}
    for name in ENDPOINTS:
      x = layers[name](x)
      endpoints[name] = x
      if name == final_endpoint:
        break
    super().__init__(inputs=inputs, outputs=endpoints, dtype=dtype, **kwargs)

    # === Config ===
    self.input_channels = input_channels
    self.gating = gating
    self.first_temporal_kernel_size = first_temporal_kernel_size
    self.temporal_conv_startat = temporal_conv_startat
    self.gating_startat = gating_startat
    self.final_endpoint = final_endpoint
    self.depth_multiplier = depth_multiplier
    self.min_depth = min_depth
    self.bn_momentum = bn_momentum
    self.bn_epsilon = bn_epsilon
    self.sync_batch_norm = bool(sync_batch_norm)
    self.variant = variant
    self.input_mean = None if input_mean is None else tuple(float(m) for m in input_mean)
    self.input_std = None if input_std is None else tuple(float(v) for v in input_std)

  @property
  def output_channels(self):
    """Channels of the final endpoint."""
    return self.output[self.final_endpoint].shape[-1]

  def get_config(self):
    return {
        "name": self.name,
        "trainable": self.trainable,
        "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
        "input_channels": self.input_channels,
        "gating": self.gating,
        "first_temporal_kernel_size": self.first_temporal_kernel_size,
        "temporal_conv_startat": self.temporal_conv_startat,
        "gating_startat": self.gating_startat,
        "final_endpoint": self.final_endpoint,
        "depth_multiplier": self.depth_multiplier,
        "min_depth": self.min_depth,
        "bn_momentum": self.bn_momentum,
        "bn_epsilon": self.bn_epsilon,
        "sync_batch_norm": self.sync_batch_norm,
        "variant": self.variant,
        "input_mean": self.input_mean,
        "input_std": self.input_std,
    }

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    if isinstance(config.get("dtype"), dict):
      config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
    return cls(**config)
