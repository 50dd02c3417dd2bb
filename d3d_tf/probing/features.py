"""Frozen feature extractors: named S3D-G endpoints of a trained model or a random-init control.

A model is a `.keras` file or a model dir of `d3d_tf.train` (its `student.keras`): an
`S3DGClassifier` (RGB baseline, D3D student, flow model) or a bare `S3DGBackbone`. Its input
modality follows from its input channels (3: rgb, 2: flow), as for teachers. SavedModels export
logits only, so their endpoints cannot be tapped.
"""

import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import keras

from d3d_tf.common import defaults
from d3d_tf.models import model_files
from d3d_tf.models import ENDPOINTS, ClipGeometry, S3DGBackbone, geometry_of
from d3d_tf.models.clip_geometry import MODALITY_BY_CHANNELS

DEFAULT_ENDPOINTS = ("Conv2d_2c_3x3", "Mixed_3c", "Mixed_4f", "Mixed_5c")
RANDOM_INIT = "random_init"
# Clip geometry a probe takes from the first model's flags.txt unless given or stored in it.
CLIP_FLAGS = ("num_frames", "stride", "crop_size", "min_area")


def model_file(path: str) -> str:
  """The `.keras` file of `path` (a file, or a model dir holding student.keras)."""
  return model_files.model_path(path, "model")


def load_backbone(path: str) -> Tuple[S3DGBackbone, Optional[ClipGeometry]]:
  """The S3D-G backbone of the model at `path` (an S3DGClassifier's, or the model itself) and
  the clip geometry the model stores (None for a bare backbone or an older file)."""
  model = model_files.load_keras(path, "model")
  backbone = model if isinstance(model, S3DGBackbone) else getattr(model, "backbone", None)
  if not isinstance(backbone, S3DGBackbone):
    raise ValueError(f"--model {path!r} is a {type(model).__name__} with no S3DGBackbone; the "
                     "probe taps S3D-G endpoints (S3DGClassifier or S3DGBackbone).")
  return backbone, geometry_of(model)


def default_endpoints(backbones: Sequence[S3DGBackbone]) -> List[str]:
  """`DEFAULT_ENDPOINTS` that every backbone has (a model cut after Mixed_3c has two)."""
  last = min(ENDPOINTS.index(b.final_endpoint) for b in backbones)
  return [e for e in DEFAULT_ENDPOINTS if ENDPOINTS.index(e) <= last]


def random_backbone(like: Optional[S3DGBackbone], input_channels: int,
                    depth_multiplier: float = 1.0) -> S3DGBackbone:
  """The random-init control: `like`'s architecture (or default S3D-G) with fresh weights.

  Seed Keras (`keras.utils.set_random_seed`) first for a reproducible control, then
  `calibrate_batch_norm` it on training clips.
  """
  if like is None:
    config = {"depth_multiplier": depth_multiplier}
  else:
    config = like.get_config()
    config.pop("trainable", None)
  config.update(input_channels=input_channels, name=RANDOM_INIT)
  return S3DGBackbone.from_config(config)


def calibrate_batch_norm(model: keras.Model, batches: Iterable) -> int:
  """Sets every batch norm's moving statistics to their mean over `batches` (inputs); no
  weight changes. Works on frozen models (`frozen_extractor`) too.

  A random-init network's moving statistics are (0, 1), so nothing is normalized in
  inference: activations shrink about 10x per block and the deep endpoints underflow to
  zero, which would make the control look motion-blind for numerical, not representational,
  reasons. With data statistics it computes what its random weights compute, at a sane scale.
  Returns the number of batches used.
  """
  layers = [layer for layer in model._flatten_layers()  # pylint: disable=protected-access
            if isinstance(layer, keras.layers.BatchNormalization)]
  saved = [(layer.momentum, layer.trainable) for layer in layers]
  count = 0
  try:
    for count, x in enumerate(batches, start=1):
      for layer in layers:
        layer.momentum = (count - 1) / count  # A running mean over the batches.
        layer.trainable = True  # A frozen batch norm ignores training=True.
      model(x, training=True)
  finally:
    for layer, (momentum, trainable) in zip(layers, saved):
      layer.momentum, layer.trainable = momentum, trainable
  return count


def input_key(backbone: S3DGBackbone) -> str:
  """"rgb" or "flow": the pipeline feature the backbone reads."""
  channels = int(backbone.input_channels)
  if channels not in MODALITY_BY_CHANNELS:
    raise ValueError(f"Backbone {backbone.name!r} takes {channels} input channels; the probe "
                     "reads rgb (3) or flow (2).")
  return MODALITY_BY_CHANNELS[channels]


def frozen_extractor(backbone: S3DGBackbone, endpoints: Sequence[str],
                     name: str = "extractor") -> keras.Model:
  """A frozen functional model returning `{endpoint: features}` for the requested endpoints.

  It shares the backbone's layers and weights and computes only up to the deepest endpoint
  asked for. Call it with `training=False` (batch norm then uses its moving statistics).
  """
  available = ENDPOINTS[:ENDPOINTS.index(backbone.final_endpoint) + 1]
  missing = [e for e in endpoints if e not in available]
  if missing:
    raise ValueError(f"--endpoints {missing} are not endpoints of {name!r}, which has "
                     f"{list(available)}.")
  outputs = {e: backbone.output[e] for e in endpoints}
  extractor = keras.Model(backbone.input, outputs, name=f"{name}_extractor")
  extractor.trainable = False
  return extractor


def model_names(paths: Sequence[str]) -> List[str]:
  """Unique short names: the model dir's name (`runs/synthetic/d3d` -> `d3d`).

  A `student.keras` is named by its dir; duplicates get their parent dirs prepended.
  """
  parts = []
  for path in paths:
    path = os.path.normpath(os.path.abspath(path))
    if os.path.basename(path) == defaults.MODEL_FILE:
      path = os.path.dirname(path)
    elif path.endswith(".keras"):
      path = path[:-len(".keras")]
    parts.append(path.split(os.sep))
  depth = 1
  while True:
    names = ["/".join(p[-depth:]) for p in parts]
    if len(set(names)) == len(names) or depth > max(len(p) for p in parts):
      break
    depth += 1
  if len(set(names)) != len(names):
    raise ValueError(f"--model lists the same model twice: {list(paths)}.")
  return names


def training_flags(path: str) -> Dict[str, float]:
  """Clip flags (`CLIP_FLAGS`) from the flags.txt of the model dir of `path`, when there is one."""
  model_dir = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
  flags_path = os.path.join(model_dir, defaults.FLAGS_FILE)
  found = {}
  if not os.path.isfile(flags_path):
    return found
  with open(flags_path, encoding="utf-8") as f:
    for line in f:
      name, _, value = line.strip().lstrip("-").partition("=")
      if name in CLIP_FLAGS and value:
        found[name] = float(value) if name == "min_area" else int(value)
  return found
