"""What the commands that consume a trained model (evaluate, export, predict, probe, features,
a teacher, --init_from) take from it: the file, the model, its labels and clip geometry.

`load_keras` is the one loader of our Keras models, from a `.keras` file or a model dir of
`d3d_tf.train`; SavedModels (predict, teachers), ONNX / LiteRT files (`inference.runtimes`)
and pretrained checkpoints (`weights.init_from`) branch to their own readers after
`model_path` has told them apart.

One rule for all of them: the model's stored `ClipGeometry` and class names, with the flags as
overrides (echoed, and refused where an override makes no sense; see `clip_geometry.resolve`).
A model without stored geometry needs the flags, and says so in one line.
"""

import os
from typing import Dict, List, Optional, Sequence, Tuple

from d3d_tf.common import defaults
from d3d_tf.data import label_map as label_map_lib
from d3d_tf.models import clip_geometry as geometry_lib
from d3d_tf.models.clip_geometry import ClipGeometry

# The model file of a model dir of `d3d_tf.train`.
MODEL_FILE = defaults.MODEL_FILE


def model_path(path: str, flag: str, saved_model_ok: bool = False) -> str:
  """The model at `path`: a `.keras` file, a model dir's `student.keras` or, when
  `saved_model_ok`, a SavedModel dir (returned as it is). Errors name `--flag` and the path.

  Raises:
    FileNotFoundError: nothing loadable is there.
    ValueError: a file that is not `.keras`.
  """
  if os.path.isdir(path):
    if os.path.isfile(os.path.join(path, MODEL_FILE)):
      return os.path.join(path, MODEL_FILE)
    if saved_model_ok and os.path.isfile(os.path.join(path, "saved_model.pb")):
      return path
    if saved_model_ok:
      raise FileNotFoundError(
          f"--{flag} {path!r} is a directory with neither {MODEL_FILE} (a model dir of "
          "d3d_tf.train) nor saved_model.pb (a SavedModel).")
    raise FileNotFoundError(
        f"--{flag} {path!r} is a directory without {MODEL_FILE}; give a model dir of "
        "d3d_tf.train or a .keras file (a SavedModel holds no Keras layers to use here).")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"--{flag} {path!r} does not exist.")
  if not path.endswith(".keras"):
    kinds = "a .keras file, a model dir or a SavedModel dir" if saved_model_ok else \
        "a .keras file or a model dir of d3d_tf.train"
    raise ValueError(f"--{flag} {path!r} must be {kinds}.")
  return path


def load_keras(path: str, flag: str = "model"):
  """The Keras model at `path` (a `.keras` file or a model dir's student.keras), uncompiled.

  Raises:
    FileNotFoundError: nothing loadable there (the message names `--flag`).
    ValueError: not a `.keras` file, or a file Keras cannot load (one line, naming it).
  """
  import keras  # pylint: disable=g-import-not-at-top  (Keras only when a model is loaded)
  import d3d_tf.models  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
  file = model_path(path, flag)
  try:
    return keras.saving.load_model(file, compile=False)
  except Exception as e:  # pylint: disable=broad-except  (any load failure is one line)
    raise ValueError(f"--{flag} {file!r} cannot be loaded: {' '.join(str(e).split())}"
                     ) from None


def resolve_labels(label_map_path: Optional[str], geometry: Optional[ClipGeometry],
                   model_path: str) -> Tuple[List[str], str]:
  """Class names and where they came from: --label_map, else the model, else the file beside it.

  Raises:
    FileNotFoundError, ValueError: no label map anywhere, or a malformed one.
  """
  if label_map_path:
    return label_map_lib.read_label_map(label_map_path), label_map_path
  if geometry is not None and geometry.labels is not None:
    return list(geometry.labels), f"the labels stored in {model_path}"
  beside = os.path.join(os.path.dirname(os.path.abspath(model_path)), defaults.LABEL_MAP_FILE)
  if not os.path.isfile(beside):
    raise FileNotFoundError(f"{model_path} stores no class names and there is no label_map.txt "
                            "beside it: pass --label_map.")
  return label_map_lib.read_label_map(beside), beside


def resolve_for_models(models: Sequence[Tuple[str, Optional[ClipGeometry]]],
                       overrides: Dict[str, Optional[float]],
                       ) -> Tuple[Dict[str, float], List[str]]:
  """One geometry for models that are fed the same views (an ensemble, one dataset).

  Models without stored geometry follow the others; models whose stored geometries differ
  need the differing values as flags.

  Args:
    models: (path, stored geometry or None) per model.
    overrides: flag name -> value or None (see `clip_geometry.resolve`).

  Returns:
    (values, notes to echo).

  Raises:
    ValueError: the flags a model without geometry needs are missing, an override contradicts
      a fixed value, or the models disagree and no flag settles it.
  """
  known = [(p, g) for p, g in models if g is not None]
  if not known:
    return geometry_lib.resolve(None, overrides, models[0][0])
  values, notes = geometry_lib.resolve(known[0][1], overrides, known[0][0])
  for path, geometry in known[1:]:
    other, other_notes = geometry_lib.resolve(geometry, overrides, path)
    if other != values:
      differs = sorted(k for k in values if values[k] != other[k])
      raise ValueError(
          f"{known[0][0]} and {path} were trained on different clips "
          f"({'; '.join(f'{k}: {values[k]} vs {other[k]}' for k in differs)}); they are fed "
          f"the same views, so pass {' and '.join('--' + k for k in differs)}.")
    notes += [n for n in other_notes if n not in notes]
  for path, geometry in models:
    if geometry is None:
      notes.append(f"{path} stores no clip geometry; it gets {known[0][0]}'s.")
  return values, notes


def describe(values: Dict[str, float]) -> str:
  """`num_frames=8 stride=1 crop_size=32 crop_fraction=0.875` for the CLIs' echo."""
  return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                  for k, v in values.items())
