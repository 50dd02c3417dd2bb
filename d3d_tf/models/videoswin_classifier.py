"""A VideoSwin student: keras-cv's `VideoSwinBackbone` with a logits head, for D3D or RGB runs.

The distillation model takes any Keras student; this is the transformer one
(`d3d_tf.train --student_backbone=videoswin`). keras-cv is an optional extra
(`pip install 'd3d_tf[videoswin]'`), imported only when a VideoSwin model is built or loaded,
so S3D-G users never pay its import. Its Kinetics presets are downloaded from Kaggle, which
our machines cannot reach: models are built from their size arguments only.

Unlike S3D-G, keras-cv's VideoSwin is not fully convolutional: its attention windows, shift
masks and paddings are computed for one input size when it is built, so the model takes only
the clips it was built for. Its `ClipGeometry` says so (`fixed_size`), and evaluate, export and
predict refuse other clip lengths and crops instead of failing deep inside the network.
"""

import dataclasses
import warnings

import keras

from d3d_tf.models.classifier_base import ClassifierBase

KERAS_CV_VERSION = "0.9.0"
INSTALL_HINT = f"pip install 'd3d_tf[videoswin]' (keras-cv=={KERAS_CV_VERSION})"
# keras-cv's VideoSwinBackbone with include_rescaling=True takes [0, 255] frames and applies
# the ImageNet mean and std that its Kinetics presets were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MissingExtraError(ImportError, ValueError):
  """keras-cv is not installed. A ValueError too, so the CLIs print it as one line."""


def import_keras_cv():
  """keras_cv, or `MissingExtraError` saying how to install it."""
  try:
    import keras_cv  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise MissingExtraError(f"A VideoSwin model needs keras-cv, which is not installed: "
                            f"{INSTALL_HINT}.") from e
  # keras-cv passes its shifted-window attention mask as `mask=`, which Keras takes for a
  # Keras mask and warns about once per layer; nothing is lost.
  warnings.filterwarnings("ignore", message=r"Layer 'video_swin_window_attention")
  return keras_cv


def videoswin_backbone(num_frames, crop_size, *, embed_dim=96, depths=(2, 2, 6, 2),
                       num_heads=(3, 6, 12, 24), window_size=(8, 7, 7), patch_size=(2, 4, 4),
                       drop_path_rate=0.2, name="videoswin_backbone"):
  """keras-cv's `VideoSwinBackbone` for RGB clips of `num_frames` x `crop_size`, from config.

  The defaults are VideoSwin-T's. `include_rescaling=True`: the backbone normalizes [0, 255]
  frames itself, as its presets expect; `VideoSwinClassifier` maps our [-1, 1] input there.

  Raises:
    ValueError: inconsistent sizes (the message names the argument).
    MissingExtraError: keras-cv is not installed.
  """
  depths, num_heads = [int(d) for d in depths], [int(h) for h in num_heads]
  window_size, patch_size = [int(w) for w in window_size], [int(p) for p in patch_size]
  if len(depths) != len(num_heads) or not depths:
    raise ValueError(f"depths and num_heads need one entry per stage. Received: "
                     f"depths={depths}, num_heads={num_heads}")
  for name_, value in (("window_size", window_size), ("patch_size", patch_size)):
    if len(value) != 3 or min(value) < 1:
      raise ValueError(f"{name_} must be 3 positive ints (time, height, width). Received: "
                       f"{name_}={value}")
  for stage, heads in enumerate(num_heads):
    dim = embed_dim * 2 ** stage
    if heads < 1 or dim % heads:
      raise ValueError(f"Stage {stage} has {dim} channels (embed_dim * 2**{stage}), which "
                       f"num_heads[{stage}]={heads} must divide. Received: "
                       f"embed_dim={embed_dim}, num_heads={num_heads}")
  keras_cv = import_keras_cv()
  return keras_cv.models.VideoSwinBackbone(
      include_rescaling=True, input_shape=(int(num_frames), int(crop_size), int(crop_size), 3),
      embed_dim=int(embed_dim), depths=depths, num_heads=num_heads, window_size=window_size,
      patch_size=patch_size, drop_path_rate=float(drop_path_rate), name=name)


@keras.saving.register_keras_serializable(package="d3d_tf")
class VideoSwinClassifier(ClassifierBase):
  """VideoSwin with a classification head: mean over tokens, dropout, dense logits.

  Takes what every d3d_tf model takes, float RGB clips [B, T, H, W, 3] in [-1, 1], and maps them
  to what the backbone expects ([0, 255] with `include_rescaling`, else ImageNet-normalized),
  so callers need nothing VideoSwin-specific. The head is keras-cv's video classifier head
  (global average pool, dense). Returns float32 logits. Video Swin Transformer: Liu et al.,
  [arXiv 2106.13230](https://arxiv.org/abs/2106.13230).

  Args:
    backbone: keras-cv `VideoSwinBackbone` with 3 input channels and a static input shape.
    num_classes: int. Number of classes.
    dropout_keep_prob: float. Probability to keep a pooled feature. Defaults to 0.8.
    clip_geometry: `ClipGeometry` (or its dict) of the training clips, or None. Its frames and
      crop must be the backbone's input size; it is stored with `fixed_size=True`.
    **kwargs: Standard model arguments (`name`, `trainable`).

  Examples:
  ```python
  backbone = videoswin_backbone(8, 64, embed_dim=24, depths=(1, 1, 1, 1),
                                num_heads=(1, 2, 4, 8), window_size=(4, 4, 4))
  model = VideoSwinClassifier(backbone, num_classes=10)
  logits = model(keras.random.uniform((2, 8, 64, 64, 3), -1, 1))  # (2, 10)
  ```
  """

  def __init__(self, backbone, num_classes, dropout_keep_prob=0.8, clip_geometry=None,
               **kwargs):
    self.check_head_args(num_classes, dropout_keep_prob)
    shape = tuple(backbone.input.shape[1:])
    if None in shape or shape[-1] != 3:
      raise ValueError(f"VideoSwinClassifier needs an RGB backbone with a static input shape "
                       f"(T, H, W, 3). Received: backbone input shape {shape}")

    # === Layers ===
    if getattr(backbone, "include_rescaling", False):
      to_backbone = [keras.layers.Rescaling(127.5, offset=127.5, name="to_0_255")]
    else:
      to_backbone = [
          keras.layers.Rescaling(0.5, offset=0.5, name="to_0_1"),
          keras.layers.Normalization(mean=list(IMAGENET_MEAN),
                                     variance=[s * s for s in IMAGENET_STD],
                                     name="imagenet_normalization")]
    pool = keras.layers.GlobalAveragePooling3D(name="Logits_pool")
    dropout = keras.layers.Dropout(1.0 - dropout_keep_prob, name="Logits_dropout")
    dense = keras.layers.Dense(num_classes, name="Logits_dense", dtype="float32")

    # === Functional Model ===
    inputs = keras.Input(shape=shape, name="video")
    x = inputs
    for layer in to_backbone:
      x = layer(x)
    logits = dense(dropout(pool(backbone(x))))
    super().__init__(inputs=inputs, outputs=logits, **kwargs)

    # === Config ===
    self._set_head_config(backbone, num_classes, dropout_keep_prob, clip_geometry)

  # keras-cv's layers take no dtype policy: the config has none (as before the base class).
  config_dtype = False

  def _check_geometry(self, value):
    """Always `fixed_size`: frames and crop must be the backbone's input size."""
    frames, height, width = self.input_shape[1:4]
    if value.modality != "rgb":
      raise ValueError(f"A VideoSwinClassifier reads rgb; clip_geometry.modality is "
                       f"{value.modality!r}.")
    if (value.num_frames, value.crop_size, value.crop_size) != (frames, height, width):
      raise ValueError(f"clip_geometry ({value.num_frames} frames x {value.crop_size} px) "
                       f"must be the backbone's input ({frames} x {height}x{width}).")
    return dataclasses.replace(value, fixed_size=True)

  @classmethod
  def from_config(cls, config):
    import_keras_cv()  # Registers VideoSwinBackbone for the deserialization.
    return super().from_config(config)
