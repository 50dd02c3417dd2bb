"""Starts a training run from pretrained weights: `d3d_tf.train --init_from=...`.

The new classifier takes the source's backbone architecture (layout, width, gating, last
block) and its weights; what the run changes is the input modality (an RGB start for a flow
model, or the reverse: the first conv's kernel averaged over the source's channels and repeated
over the new ones, the usual two-stream initialisation), the class count (a fresh head) and the
batch-norm momentum. Layers up to `freeze_until` can be frozen; Keras runs the batch norm of a
frozen layer in inference mode.
"""

import os

import numpy as np

from d3d_tf.common import defaults
from d3d_tf.models import ENDPOINTS, S3DGBackbone, S3DGClassifier
from d3d_tf.models import model_files
from d3d_tf.weights.assign import WeightsError
from d3d_tf.weights.name_tables import HEAD_LAYER
from d3d_tf.weights.slim_checkpoint import is_slim_checkpoint, load_slim_classifier
from d3d_tf.weights.torchvision_state_dict import load_torchvision_classifier

FIRST_CONV = "Conv2d_1a_7x7"


def load_source(path, use_ema=False):
  """An `S3DGClassifier` from a .keras file, a model dir, a TF-Slim checkpoint or a .pth file."""
  path = os.path.expanduser(path)
  if os.path.isdir(path) and os.path.isfile(os.path.join(path, defaults.MODEL_FILE)):
    path = os.path.join(path, defaults.MODEL_FILE)
  if path.endswith(".keras"):
    model = model_files.load_keras(path, "init_from")
  elif path.endswith((".pth", ".pt")):
    model, _ = load_torchvision_classifier(path)
  elif is_slim_checkpoint(path):
    model, _ = load_slim_classifier(path, use_ema=use_ema)
  else:
    raise FileNotFoundError(
        f"--init_from={path!r} is neither a .keras file, a model dir with student.keras, a "
        "TF checkpoint prefix (with .index) nor a torchvision .pth file.")
  if not isinstance(model, S3DGClassifier):
    raise WeightsError(f"--init_from={path!r} holds a {type(model).__name__}, not an "
                       "S3DGClassifier: only S3D-G / S3D weights can start a run.")
  return model


def cross_modality_kernel(kernel, channels):
  """[t, h, w, C, out] -> [t, h, w, channels, out]: the mean over C, repeated (as TSN)."""
  return np.repeat(np.mean(kernel, axis=3, keepdims=True), channels, axis=3)


def build_from_source(source, input_channels, num_classes, *, reset_head=False,
                      freeze_until="", bn_momentum=None, sync_batch_norm=False,
                      dropout_keep_prob=0.8, dtype=None, name=None):
  """A new classifier with the source's backbone weights; returns (model, notes).

  Args:
    source: An `S3DGClassifier`, e.g. from `load_source`.
    input_channels: 3 (RGB) or 2 (flow). A change from the source's is a cross-modality start.
    num_classes: Classes of the new head. The source's head is kept when the count matches
      and `reset_head` is False.
    reset_head: Always start a fresh head.
    freeze_until: An endpoint; it and every layer before it stop training ("" : none).
    bn_momentum: The run's batch-norm momentum; None keeps the source's.
    sync_batch_norm: The run's `S3DGBackbone(sync_batch_norm=...)`; the source's is not kept
      (it says how the source was trained, not how this run trains).
    dropout_keep_prob, dtype, name: As `S3DGClassifier`.

  Returns:
    (classifier, notes): `notes` are lines saying what was kept, changed and frozen.
  """
  if freeze_until and freeze_until not in ENDPOINTS:
    raise ValueError(f"--freeze_until must be one of {', '.join(ENDPOINTS)}; got "
                     f"{freeze_until!r}.")
  config = source.backbone.get_config()
  source_channels = config["input_channels"]
  if freeze_until and ENDPOINTS.index(freeze_until) > ENDPOINTS.index(config["final_endpoint"]):
    raise ValueError(f"--freeze_until={freeze_until} is past the source's last block "
                     f"{config['final_endpoint']}.")
  config.update(input_channels=input_channels, dtype=dtype, name="s3dg_backbone")
  if bn_momentum is not None:
    config["bn_momentum"] = bn_momentum
  config["sync_batch_norm"] = bool(sync_batch_norm)
  if input_channels != source_channels:
    config.update(input_mean=None, input_std=None)
  backbone = S3DGBackbone.from_config(config)
  model = S3DGClassifier(backbone, num_classes, dropout_keep_prob=dropout_keep_prob,
                         dtype=dtype, name=name)
  notes = []
  for layer in backbone.layers:
    if not layer.weights or layer.name == "input_normalization" and (
        input_channels != source_channels):
      continue
    origin = source.backbone.get_layer(layer.name)
    if layer.name == FIRST_CONV and input_channels != source_channels:
      for variable, value in zip(layer.weights, origin.weights):
        if variable is layer.conv.kernel:
          value = cross_modality_kernel(np.asarray(value), input_channels)
        variable.assign(value)
      notes.append(f"first conv averaged over the source's {source_channels} input channels "
                   f"and repeated over {input_channels}")
    else:
      layer.set_weights(origin.get_weights())
  source_classes = source.get_layer(HEAD_LAYER).kernel.shape[-1]
  if num_classes == source_classes and not reset_head:
    model.get_layer(HEAD_LAYER).set_weights(source.get_layer(HEAD_LAYER).get_weights())
    notes.append(f"head kept ({num_classes} classes)")
  else:
    why = "--reset_head" if num_classes == source_classes else (
        f"{source_classes} classes in the source, {num_classes} here")
    notes.append(f"fresh head ({why})")
  if freeze_until:
    frozen = ENDPOINTS[:ENDPOINTS.index(freeze_until) + 1]
    for layer in backbone.layers:
      if layer.name in frozen or layer.name == "input_normalization":
        layer.trainable = False
    notes.append(f"frozen up to {freeze_until} (batch norm there in inference mode)")
  return model, notes


