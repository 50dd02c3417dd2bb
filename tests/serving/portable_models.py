"""Tiny classifiers for the ONNX and LiteRT tests: each variant the exports must reproduce."""

import numpy as np

from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier

LABELS = ["ride bike", "walk", "swim"]
FRAMES, CROP = 8, 32


# The networks the exports must reproduce: S3D-G on RGB and flow, plain S3D (no gating) and
# the torchvision layout (separable first conv, symmetric padding, input normalisation layer).
VARIANTS = {
    "rgb": dict(input_channels=3),
    "flow": dict(input_channels=2),
    "s3d": dict(input_channels=3, gating=False),
    "torchvision": dict(input_channels=3, variant="torchvision"),
}


def tiny_model(channels, seed, **backbone_kwargs):
  """Depth-0.125 S3D-G (or a variant: `backbone_kwargs`) whose logits depend on the clip.

  Random kernels with unit BN statistics give nearly constant logits (each BN re-centres a
  layer's near-zero mean), so the statistics, shifts and head weights are drawn too.
  """
  modality = "rgb" if channels == 3 else "flow"
  model = S3DGClassifier(
      S3DGBackbone(input_channels=channels, depth_multiplier=0.125, final_endpoint="Mixed_3c",
                   **backbone_kwargs),
      num_classes=len(LABELS),
      clip_geometry=ClipGeometry(num_frames=FRAMES, crop_size=CROP, modality=modality,
                                 flow_bound=20.0 if channels == 2 else None,
                                 labels=tuple(LABELS)))
  rng = np.random.default_rng(seed)
  for v in model.variables:
    name = v.path.split("/")[-1]
    if name == "kernel":
      std = np.sqrt(2.0 / np.prod(v.shape[:-1])) * (30.0 if "Logits" in v.path else 1.0)
      v.assign(rng.normal(0, std, v.shape).astype("float32"))
    elif name in ("bias", "beta", "moving_mean"):
      v.assign(rng.normal(0, 0.1, v.shape).astype("float32"))
    elif name == "moving_variance":
      v.assign(rng.uniform(0.5, 2.0, v.shape).astype("float32"))
  return model
