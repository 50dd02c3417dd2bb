"""The video record schema, shared by the converter (writer) and the input pipeline (reader).

One `tf.train.SequenceExample` per video. The context holds per-video metadata; the feature lists
hold one JPEG per RGB frame and, when flow was computed, one encoded grayscale plane per flow
component for every consecutive frame pair (so flow lists are one shorter than the RGB list).
Flow is quantized the standard two-stream way: clip to [-B, B] pixels and map linearly to
0..255; B is stored in the context so any reader can invert it. WORKSPACE.md documents the table.
"""

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from d3d_tf.common import defaults
from d3d_tf.data import flow_quantization

SCHEMA_VERSION = 1
DEFAULT_FLOW_BOUND = defaults.FLOW_BOUND

# === Context keys ===
VIDEO_ID = "video/id"
LABEL_INDEX = "video/label/index"
LABEL_NAME = "video/label/name"
FPS = "video/fps"
NUM_FRAMES = "video/num_frames"
HEIGHT = "video/height"
WIDTH = "video/width"
FLOW_ALGORITHM = "flow/algorithm"
FLOW_BOUND = "flow/bound"
FLOW_FORMAT = "flow/format"
FLOW_SECONDS = "flow/seconds"
VERSION = "schema/version"

# === Feature-list keys ===
RGB_JPEG = "rgb/encoded"
FLOW_X = "flow/x/encoded"
FLOW_Y = "flow/y/encoded"

# Feature names of decoded clips in the input pipeline.
RGB = "rgb"
FLOW = "flow"
LABEL = "label"
# The label a pipeline gives a clip whose label the student must not see: the
# distiller's label loss and accuracies skip it (`d3d_tf.distill.UNLABELLED`).
UNLABELLED = -1

FLOW_FORMATS = flow_quantization.FLOW_FORMATS


def quantize_flow(flow: np.ndarray, bound: float = DEFAULT_FLOW_BOUND) -> np.ndarray:
  """Maps flow in pixels, [..., 2] float, to uint8: [-bound, bound] -> [0, 255]."""
  return flow_quantization.quantize_flow(flow, bound)


def dequantize_flow(quantized, bound):
  """Inverts `quantize_flow` to pixels; works on NumPy arrays and tensors alike.

  The round trip is exact to half a quantization step, `bound / 255` pixels, inside the bound.
  """
  if isinstance(quantized, np.ndarray):
    return flow_quantization.dequantize_flow(quantized.astype(np.float32), bound)
  return flow_quantization.dequantize_flow(tf.cast(quantized, tf.float32),
                                           tf.cast(bound, tf.float32))


def _bytes_list(values: Sequence[bytes]) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _int_list(values: Sequence[int]) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _float_list(values: Sequence[float]) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def make_sequence_example(
    video_id: str,
    label_index: int,
    label_name: str,
    fps: float,
    height: int,
    width: int,
    rgb_jpegs: Sequence[bytes],
    flow_x: Optional[Sequence[bytes]] = None,
    flow_y: Optional[Sequence[bytes]] = None,
    flow_algorithm: str = "none",
    flow_bound: float = DEFAULT_FLOW_BOUND,
    flow_format: str = "png",
    flow_seconds: float = 0.0,
) -> tf.train.SequenceExample:
  """Builds one video record; `flow_x`/`flow_y` are encoded planes, one per frame pair."""
  if not rgb_jpegs:
    raise ValueError(f"A record needs at least one frame. Received 0 frames for {video_id!r}.")
  has_flow = flow_x is not None
  if has_flow:
    if flow_y is None or len(flow_x) != len(flow_y):
      raise ValueError(f"flow_x and flow_y must have the same length for {video_id!r}.")
    if len(flow_x) != max(len(rgb_jpegs) - 1, 0):
      raise ValueError(
          f"Expected {len(rgb_jpegs) - 1} flow planes (one per frame pair) for {video_id!r}. "
          f"Received: {len(flow_x)}")
    if flow_format not in FLOW_FORMATS:
      raise ValueError(f"flow_format must be one of {FLOW_FORMATS}. Received: {flow_format!r}")
  context = tf.train.Features(feature={
      VIDEO_ID: _bytes_list([video_id.encode("utf-8")]),
      LABEL_INDEX: _int_list([label_index]),
      LABEL_NAME: _bytes_list([label_name.encode("utf-8")]),
      FPS: _float_list([fps]),
      NUM_FRAMES: _int_list([len(rgb_jpegs)]),
      HEIGHT: _int_list([height]),
      WIDTH: _int_list([width]),
      FLOW_ALGORITHM: _bytes_list([(flow_algorithm if has_flow else "none").encode("utf-8")]),
      FLOW_BOUND: _float_list([flow_bound]),
      FLOW_FORMAT: _bytes_list([flow_format.encode("utf-8")]),
      FLOW_SECONDS: _float_list([flow_seconds]),
      VERSION: _int_list([SCHEMA_VERSION]),
  })
  lists = {RGB_JPEG: tf.train.FeatureList(feature=[_bytes_list([b]) for b in rgb_jpegs])}
  if has_flow:
    lists[FLOW_X] = tf.train.FeatureList(feature=[_bytes_list([b]) for b in flow_x])
    lists[FLOW_Y] = tf.train.FeatureList(feature=[_bytes_list([b]) for b in flow_y])
  return tf.train.SequenceExample(
      context=context, feature_lists=tf.train.FeatureLists(feature_list=lists))


CONTEXT_SPEC = {
    VIDEO_ID: tf.io.FixedLenFeature([], tf.string),
    LABEL_INDEX: tf.io.FixedLenFeature([], tf.int64),
    LABEL_NAME: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    FPS: tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
    NUM_FRAMES: tf.io.FixedLenFeature([], tf.int64),
    HEIGHT: tf.io.FixedLenFeature([], tf.int64),
    WIDTH: tf.io.FixedLenFeature([], tf.int64),
    FLOW_ALGORITHM: tf.io.FixedLenFeature([], tf.string, default_value=b"none"),
    FLOW_BOUND: tf.io.FixedLenFeature([], tf.float32, default_value=DEFAULT_FLOW_BOUND),
    FLOW_FORMAT: tf.io.FixedLenFeature([], tf.string, default_value=b"png"),
    FLOW_SECONDS: tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
    VERSION: tf.io.FixedLenFeature([], tf.int64, default_value=SCHEMA_VERSION),
}


def parse_sequence_example(serialized: tf.Tensor, with_flow: bool = True,
                           example_name: Optional[tf.Tensor] = None):
  """Parses one serialized record in-graph into (context dict, sequence dict of encoded bytes).

  Frames stay encoded: the pipeline decodes only the frames it samples. `example_name`
  ("file:index", see `example_name`) names the record in parse errors.
  """
  sequence_spec = {RGB_JPEG: tf.io.FixedLenSequenceFeature([], tf.string)}
  if with_flow:
    sequence_spec[FLOW_X] = tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
    sequence_spec[FLOW_Y] = tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
  context, sequence = tf.io.parse_single_sequence_example(
      serialized, context_features=CONTEXT_SPEC, sequence_features=sequence_spec,
      example_name=example_name)
  return context, sequence


def example_name(source: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
  """"<file>:<record index>", the name errors use for a record."""
  return tf.strings.join([source, tf.strings.as_string(index)], separator=":")


def glob_files(pattern: str) -> list:
  """Sorted files matching a glob, or any of comma-separated globs (`train-*,unlabelled-*`)."""
  globs = [p.strip() for p in pattern.split(",") if p.strip()]
  return sorted({f for p in globs for f in tf.io.gfile.glob(p)})


def flow_bound_of(flag: str, pattern: str) -> float:
  """The flow bound B of the records of `pattern`, from the first record of every shard.

  The pipeline divides flow by B, so a model sees flow in units of B: one B for all records is
  required (the converter writes one, its --flow_bound). `flag` names the files in errors.
  """
  files = glob_files(pattern)
  if not files:
    raise FileNotFoundError(f"No files match --{flag}={pattern!r}.")
  spec = {FLOW_BOUND: CONTEXT_SPEC[FLOW_BOUND],
          FLOW_ALGORITHM: CONTEXT_SPEC[FLOW_ALGORITHM]}
  bounds = set()
  for path in files:
    for serialized in tf.data.TFRecordDataset(path).take(1):
      context, _ = tf.io.parse_single_sequence_example(serialized, context_features=spec)
      if context[FLOW_ALGORITHM].numpy() == b"none":
        raise ValueError(f"--{flag}: {path} holds no optical flow (flow/algorithm is none); "
                         "convert the videos with flow (tfrecords_tools.build_tfrecords --flow).")
      bounds.add(round(float(context[FLOW_BOUND].numpy()), 6))
  if not bounds:
    raise ValueError(f"--{flag}={pattern!r} matches {len(files)} file(s) with no records.")
  if len(bounds) > 1:
    raise ValueError(f"--{flag}={pattern!r}: records have different flow bounds {sorted(bounds)};"
                     " one is needed (re-convert with one --flow_bound).")
  return bounds.pop()


def smallest_short_side(files: Sequence[str]) -> int:
  """The smallest short side (pixels) of the first record of each of `files`, 0 if none.

  The converter writes one --short_side for a whole dataset, so the first record stands for
  its shard: enough to refuse a crop larger than the frames before training starts.
  """
  spec = {HEIGHT: CONTEXT_SPEC[HEIGHT], WIDTH: CONTEXT_SPEC[WIDTH]}
  sides = []
  for path in files:
    for serialized in tf.data.TFRecordDataset(path).take(1):
      context, _ = tf.io.parse_single_sequence_example(serialized, context_features=spec)
      sides.append(int(min(context[HEIGHT].numpy(), context[WIDTH].numpy())))
  return min(sides, default=0)
