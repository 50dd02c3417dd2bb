"""Loads frozen teachers for D3D and checks them against the label map before any training.

A teacher is a `.keras` file, a model dir of ours (its `student.keras`) or a SavedModel dir.
Each teacher's input key follows from its input channels (3: rgb, 2: flow), so a two-stream
teacher is just two paths. A teacher that stores its clip geometry is checked against the run:
the same classes, the same temporal stride and, for a flow teacher, the same flow (method,
bound, quantisation) as the records it reads; other clip sizes are echoed.
"""

import os
from typing import List, Mapping, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from d3d_tf.models import flow_settings
from d3d_tf.models import model_files
from d3d_tf.models import clip_geometry as geometry_lib


def _saved_model_teacher(path: str) -> keras.Model:
  """Wraps a SavedModel's serving signature as a Keras model with one video input."""
  loaded = tf.saved_model.load(path)
  signature = loaded.signatures.get("serving_default")
  if signature is None:
    raise ValueError(f"SavedModel {path!r} has no 'serving_default' signature.")
  specs = list(signature.structured_input_signature[1].values())
  if len(specs) != 1 or specs[0].shape.rank != 5:
    raise ValueError(f"SavedModel {path!r} must take one [B, T, H, W, C] video; "
                     f"its signature takes {specs}.")
  layer = keras.layers.TFSMLayer(path, call_endpoint="serving_default", trainable=False)
  inputs = keras.Input(specs[0].shape[1:], name="video")
  outputs = layer(inputs)
  if isinstance(outputs, dict):
    if len(outputs) != 1:
      raise ValueError(f"SavedModel {path!r} must return one logits tensor; returns "
                       f"{sorted(outputs)}.")
    outputs = next(iter(outputs.values()))
  return keras.Model(inputs, outputs, name=os.path.basename(os.path.normpath(path)))


def load_teacher(path: str) -> keras.Model:
  """Loads one teacher (`model_files.model_path`); errors name the path."""
  path = model_files.model_path(path, "teacher", saved_model_ok=True)
  if os.path.isdir(path):
    return _saved_model_teacher(path)
  return model_files.load_keras(path, "teacher")


def input_channels(model: keras.Model) -> int:
  return int(model.inputs[0].shape[-1])


def num_classes(model: keras.Model) -> int:
  return int(model.outputs[0].shape[-1])


def load_teachers(paths: Sequence[str], num_labels: int, student_input: str = "rgb",
                  same_modality_ok: bool = False) -> Tuple[List[keras.Model], List[str]]:
  """Loads and validates the teacher(s); returns the models and their input keys.

  One teacher must read the modality the student does not (flow for an RGB student), unless
  `same_modality_ok` (plain distillation, e.g. RGB into RGB); two teachers (a two-stream
  teacher) must read one modality each.

  Raises:
    FileNotFoundError: A path does not exist.
    ValueError: Wrong number of classes or input channels, or two teachers of one modality.
  """
  if not paths or len(paths) > 2:
    raise ValueError(f"--teacher needs one or two comma-separated paths; received {paths!r}.")
  teachers, keys = [], []
  for path in paths:
    model = load_teacher(path)
    channels = input_channels(model)
    if channels not in geometry_lib.MODALITY_BY_CHANNELS:
      raise ValueError(f"Teacher {path!r} expects {channels} input channels; a teacher must "
                       "take 3 (rgb) or 2 (flow).")
    if num_classes(model) != num_labels:
      raise ValueError(f"Teacher {path!r} predicts {num_classes(model)} classes but the label "
                       f"map has {num_labels}.")
    teachers.append(model)
    keys.append(geometry_lib.MODALITY_BY_CHANNELS[channels])
  if len(paths) == 1 and keys[0] == student_input and not same_modality_ok:
    wanted = "flow" if student_input == "rgb" else "rgb"
    channels = geometry_lib.CHANNELS_BY_MODALITY
    raise ValueError(
        f"Teacher {paths[0]!r} expects {channels[keys[0]]} channels ({keys[0]}) but the D3D "
        f"teacher must read {wanted} ({channels[wanted]} channels); give a {wanted} model, "
        "two comma-separated paths for a two-stream teacher, or --same_modality_teacher for "
        "plain distillation.")
  if len(paths) == 2 and keys[0] == keys[1]:
    raise ValueError(f"A two-stream teacher needs one rgb and one flow model; both {paths!r} "
                     f"read {keys[0]}.")
  return teachers, keys


def check_geometry(paths: Sequence[str], teachers: Sequence[keras.Model], clip: dict,
                   labels: Sequence[str],
                   flows: Optional[Mapping[str, flow_settings.FlowSettings]] = None,
                   ) -> List[str]:
  """Checks the teachers' stored geometry against the run's clips; returns notes to print.

  Args:
    paths: The --teacher paths, for messages.
    teachers: The loaded teachers.
    clip: The run's `num_frames`, `stride`, `crop_size`.
    labels: The run's class names.
    flows: Flag (e.g. "--train_files") -> the flow settings of the records a flow teacher
      reads (`flow_settings.records_settings`); None or empty without a flow teacher.

  Raises:
    ValueError: other class names, another temporal stride, or flow of another method, bound
      or quantisation than the records'.
  """
  notes = []
  for path, teacher in zip(paths, teachers):
    geometry = geometry_lib.geometry_of(teacher)
    if input_channels(teacher) == geometry_lib.CHANNELS_BY_MODALITY["flow"]:
      stored = geometry.flow_settings if geometry is not None else None
      for flag, data in (flows or {}).items():
        note = flow_settings.check(stored, data, f"Teacher {path!r}", flag)
        if note:
          notes.append(note)
    if geometry is None:
      continue
    if geometry.labels is not None and list(geometry.labels) != list(labels):
      differ = next(i for i, (a, b) in enumerate(zip(geometry.labels, labels)) if a != b)
      raise ValueError(f"Teacher {path!r} was trained on other classes: its class {differ} is "
                       f"{geometry.labels[differ]!r}, the label map's is {labels[differ]!r}.")
    _, overrides = geometry_lib.resolve(geometry, dict(clip), f"teacher {path}")
    notes += [n.replace(" overrides ", " (this run) differs from ") for n in overrides]
  return notes
