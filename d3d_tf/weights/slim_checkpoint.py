"""Reads TF1 TF-Slim S3D-G checkpoints (the D3D release's) into an `S3DGClassifier`.

The checkpoint is read with `tf.train.load_checkpoint`, so no TF1 graph is built. The
architecture (input channels, first temporal kernel, where temporal convs and gating start,
width, last block, classes) comes from the tensors' shapes. As the release's notebook restores
into `s3dg.py` with a plain saver, only variables under `InceptionV1/` count; training state
(optimizer slots, `global_step`, moving-average shadows) is ignored unless asked for.
"""

import os

import tensorflow as tf

from d3d_tf.models import ENDPOINTS, S3DGBackbone, S3DGClassifier
from d3d_tf.models.s3dg_backbone import INCEPTION_FILTERS
from d3d_tf.weights import name_tables
from d3d_tf.weights.assign import WeightsError, assign_from_table

EMA_SUFFIX = "/ExponentialMovingAverage"
# Optimizer slots and counters that TF1 training leaves beside the weights.
_SLOT_SUFFIXES = ("/Momentum", "/Adam", "/Adam_1", "/RMSProp", "/RMSProp_1", "/Adagrad",
                  "/AdamW", "/AdamW_1")
_ROOT = name_tables.SLIM_SCOPE + "/"


def resolve_prefix(path):
  """A directory's checkpoint: its `checkpoint` file's latest, else its only `*.index`."""
  if not os.path.isdir(path):
    return path
  latest = tf.train.latest_checkpoint(path)
  if latest:
    return latest
  indexes = sorted(f for f in os.listdir(path) if f.endswith(".index"))
  return os.path.join(path, indexes[0][:-len(".index")]) if len(indexes) == 1 else path


def is_slim_checkpoint(path):
  """True for a TF1/TF2 checkpoint prefix or a directory holding one."""
  return os.path.isfile(resolve_prefix(path) + ".index")


def open_checkpoint(prefix):
  """(reader, {name: shape}); WeightsError names the file when there is no readable index."""
  prefix = resolve_prefix(prefix)
  if not os.path.isfile(prefix + ".index"):
    hint = " (give the prefix, without .index or .data-*)" if prefix.endswith(
        (".index", ".meta")) or ".data-" in prefix else ""
    raise WeightsError(f"--checkpoint={prefix!r}: no TF checkpoint index {prefix}.index{hint}.")
  try:
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
  except (tf.errors.OpError, ValueError) as e:
    raise WeightsError(f"--checkpoint={prefix!r}: unreadable TF checkpoint "
                       f"({str(e).splitlines()[0]}).") from None
  return prefix, reader, shapes


def model_tensors(shapes, use_ema=False):
  """The model's tensors under `InceptionV1/`: {name the table uses: name in the checkpoint}."""
  names = {}
  for name in shapes:
    if not name.startswith(_ROOT) or name.endswith(_SLOT_SUFFIXES):
      continue
    if name.endswith(EMA_SUFFIX):
      if use_ema:
        names[name[:-len(EMA_SUFFIX)]] = name
      continue
    names.setdefault(name, name)
  return names


def _channels(shapes, name, prefix):
  shape = shapes.get(_ROOT + name)
  if shape is None:
    raise WeightsError(f"{prefix}: no tensor {_ROOT + name!r}: not a full S3D-G checkpoint.")
  return shape[-1]


def infer_architecture(shapes, prefix):
  """Backbone keyword arguments and class count from the tensors' shapes."""
  first = shapes.get(_ROOT + "Conv2d_1a_7x7/weights")
  if first is None:
    raise WeightsError(f"{prefix}: no tensor 'InceptionV1/Conv2d_1a_7x7/weights': not a TF-Slim "
                       "S3D-G checkpoint.")
  if len(first) != 5:
    raise WeightsError(
        f"{prefix}: 'InceptionV1/Conv2d_1a_7x7/weights' has shape {list(first)}, a 2D kernel: "
        "this is TF-Slim's 2D Inception-v1, not S3D-G (whose kernels are 5-D).")
  blocks = [b for b in ENDPOINTS if b.startswith("Mixed") and (
      _ROOT + f"{b}/Branch_0/Conv2d_0a_1x1/weights") in shapes]
  if not blocks:
    raise WeightsError(f"{prefix}: no Inception block (InceptionV1/Mixed_3b/...): not a full "
                       "S3D-G checkpoint.")
  head = shapes.get(_ROOT + name_tables.SLIM_HEAD + "/weights")
  if head is None:
    raise WeightsError(f"{prefix}: no logits head 'InceptionV1/Logits/Conv2d_0c_1x1/weights'.")

  def has(block, suffix):
    inner = "" if block == "Conv2d_2c_3x3" else "/Branch_1/Conv2d_0b_3x3"
    if suffix == "self_gating":  # Gating follows the last conv of every branch.
      inner = "" if block == "Conv2d_2c_3x3" else "/Branch_0/Conv2d_0a_1x1"
      return (_ROOT + f"{block}{inner}/self_gating/transformer_W/weights") in shapes
    return (_ROOT + f"{block}{inner}/temporal/weights") in shapes

  startable = ["Conv2d_2c_3x3"] + blocks
  temporal = next((b for b in startable if has(b, "temporal")), None)
  gating = next((b for b in startable if has(b, "self_gating")), None)
  last = blocks[-1]
  depth_multiplier = _channels(shapes, f"{last}/Branch_1/Conv2d_0b_3x3/weights", prefix) / (
      INCEPTION_FILTERS[last][2])
  smallest = _channels(shapes, "Mixed_3b/Branch_2/Conv2d_0a_1x1/weights", prefix)
  min_depth = max(16, smallest) if smallest > int(16 * depth_multiplier) else 16
  return dict(
      input_channels=int(first[3]), first_temporal_kernel_size=int(first[0]),
      temporal_conv_startat=temporal, gating=gating is not None,
      gating_startat=gating or "Conv2d_2c_3x3", final_endpoint=last,
      depth_multiplier=float(depth_multiplier), min_depth=int(min_depth)), int(head[-1])


def load_slim_classifier(prefix, use_ema=False, dtype=None, name=None):
  """An `S3DGClassifier` holding a TF-Slim checkpoint's weights.

  Args:
    prefix: The checkpoint prefix (or a directory with a `checkpoint` file).
    use_ema: Take `.../ExponentialMovingAverage` shadows instead of the raw weights.
    dtype: The model's dtype policy.
    name: The model's name.

  Returns:
    (classifier, info): info says what was found (`ema_available`, `used_ema`, `tensors`).

  Raises:
    WeightsError: Not S3D-G, a missing, unused or misshapen tensor, or an unreadable file.
  """
  prefix, reader, shapes = open_checkpoint(prefix)
  ema = any(n.startswith(_ROOT) and n.endswith(EMA_SUFFIX) for n in shapes)
  if use_ema and not ema:
    raise WeightsError(f"{prefix}: --use_ema asked for moving-average shadows but the "
                       "checkpoint has none (no '.../ExponentialMovingAverage' tensors).")
  kwargs, num_classes = infer_architecture(shapes, prefix)
  backbone = S3DGBackbone(variant="slim", dtype=dtype, **kwargs)
  modality = "flow" if kwargs["input_channels"] == 2 else "rgb"
  classifier = S3DGClassifier(backbone, num_classes, dtype=dtype, name=name or f"s3dg_{modality}")
  names = model_tensors(shapes, use_ema)

  def read(table_name):
    try:
      return reader.get_tensor(names[table_name])
    except (IndexError, tf.errors.OpError) as e:  # A truncated .data file gives IndexError.
      raise WeightsError(f"{prefix}: cannot read tensor {names[table_name]!r} from "
                         f"{prefix}.data-*: the file is truncated or damaged ({type(e).__name__})."
                         ) from None

  count = assign_from_table(name_tables.slim_table(classifier), read, set(names), prefix)
  return classifier, {"tensors": count, "ema_available": ema, "used_ema": use_ema,
                      "architecture": kwargs, "num_classes": num_classes, "prefix": prefix}



def slim_tensors(classifier):
  """{TF-Slim name: array} of a slim-layout classifier, shaped as `s3dg.py` stores them."""
  tensors = {}
  for name, variable, _ in name_tables.slim_table(classifier):
    value = variable.numpy()
    tensors[name] = value.reshape((1, 1, 1) + value.shape) if value.ndim == 2 else value
  return tensors


def write_name_based_checkpoint(prefix, tensors):
  """Writes {name: array} with `SaveV2`, the format of TF1's `tf.train.Saver`."""
  names = sorted(tensors)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=[tf.constant(tensors[n]) for n in names])
  return prefix


def save_slim_checkpoint(classifier, prefix, extra=None):
  """Writes a slim-layout classifier as a TF1 checkpoint that `s3dg.py` restores.

  The inverse of `load_slim_classifier`. `extra`: more {name: array} to store, e.g. optimizer
  slots.
  """
  return write_name_based_checkpoint(prefix, {**slim_tensors(classifier), **(extra or {})})
