"""The public tf.data pipelines: training clips, multi-view evaluation, full videos, raw videos.

Records are read with interleaved parallel `TFRecordDataset`s and only the sampled frames are
decoded, in-graph. RGB and flow of a clip share the frame indices, crop box and flip (see
`builders`), so the D3D flow teacher and RGB student see the same clip.

Damaged data never hangs the pipeline and is always reported with its file:
  * A damaged shard (truncated file, CRC mismatch) is detected by counting the bytes read per
    file against the file's size (TensorFlow's own reader errors do not name the file).
  * A record whose framing is intact but whose content does not parse or decode (bad proto,
    undecodable JPEG/PNG, missing flow planes) is caught per record.
With `ignore_errors=False` either raises `tf.errors.InvalidArgumentError` whose message names
the file (and record index); with `ignore_errors=True` it is skipped, logged and counted in a
`SkipCounter`. After a damaged shard's first bad record TensorFlow cannot resynchronise, so the
rest of that file is skipped too (counted once, as one damaged shard).
"""

import logging
import random
import threading
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from d3d_tf.data import builders
from d3d_tf.data import records

AUTOTUNE = tf.data.AUTOTUNE

# Feature names.
RGB = records.RGB
FLOW = records.FLOW
LABEL = records.LABEL
VIDEO_INDEX = builders.VIDEO_INDEX
VIDEO_ID = builders.VIDEO_ID
VIEW_INDEX = builders.VIEW_INDEX

# Bytes a TFRecord adds around each record: length (8), length CRC (4), data CRC (4).
_TFRECORD_OVERHEAD = 16
# Shards read concurrently by one pipeline.
_DEFAULT_CYCLE_LENGTH = 8
# Read buffer per shard: a record is a whole video (megabytes); 1 MiB reads cost less CPU per
# byte than the 256 KiB default.
_READ_BUFFER_BYTES = 1 << 20


class SkipCounter:
  """Counts (and logs) what a pipeline with `ignore_errors=True` skipped.

  Attributes:
    damaged_shards: Files whose TFRecord framing or CRC failed; the rest of such a file is
      unreadable, so this counts one event per damaged file, not the records lost.
    bad_records: Intact records that failed to parse or decode (or raw videos that failed to
      read), each skipped.
    events: (kind, name) per skip: kind "damaged_shard" or "bad_record", name the file path
      (and ":<record index>" for records).
  """

  def __init__(self):
    self._lock = threading.Lock()
    self.damaged_shards = 0
    self.bad_records = 0
    self.events: List[Tuple[str, str]] = []

  @property
  def total(self) -> int:
    return self.damaged_shards + self.bad_records

  def add(self, kind: str, name: str):
    with self._lock:
      if kind == "damaged_shard":
        self.damaged_shards += 1
      else:
        self.bad_records += 1
      self.events.append((kind, name))
    logging.warning("Skipped %s: %s", kind.replace("_", " "), name)

  def op(self, kind: str, name: tf.Tensor) -> tf.Tensor:
    """In-graph `add` (a `tf.py_function`, run only on the skip path)."""

    def add(n):
      self.add(kind, n.numpy().decode("utf-8", "replace"))
      return np.int64(0)

    return tf.py_function(add, [name], tf.int64)

  def __repr__(self):
    return (f"SkipCounter(damaged_shards={self.damaged_shards}, "
            f"bad_records={self.bad_records})")


# ----------------------------------------------------------------------------
# Shards and error handling.
# ----------------------------------------------------------------------------


def list_shards(file_pattern: Union[str, Sequence[str]]) -> Tuple[List[str], List[int]]:
  """Sorted files matching the glob pattern(s), and their sizes in bytes."""
  patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
  files = sorted({f for p in patterns for f in tf.io.gfile.glob(p)})
  if not files:
    raise ValueError(f"No files match file_pattern={file_pattern!r}.")
  return files, [int(tf.io.gfile.stat(f).length) for f in files]


def _read_shard(path: tf.Tensor, size: tf.Tensor) -> tf.data.Dataset:
  """Records of one file, each tagged with its name; plus one `damaged` marker if it is damaged.

  TFRecordDataset stops a file at its first framing/CRC error; with the error ignored, the file
  was read whole exactly when the bytes of the records read add up to the file size.
  """
  records_ds = tf.data.TFRecordDataset(path, buffer_size=_READ_BUFFER_BYTES).ignore_errors()
  tagged = records_ds.map(lambda r: (r, tf.constant(False)))
  end = tf.data.Dataset.from_tensors((tf.constant(b""), tf.constant(True)))

  def step(state, item):
    consumed, index = state
    record, is_end = item
    length = tf.cast(tf.strings.length(record), tf.int64) + _TFRECORD_OVERHEAD
    element = {
        "name": builders.example_name(path, index),
        "source": path,
        "serialized": record,
        "end": is_end,
        "damaged": tf.logical_and(is_end, tf.not_equal(consumed, size)),
        "bytes_read": consumed,
        "size": size,
    }
    new_state = (consumed + tf.where(is_end, tf.constant(0, tf.int64), length),
                 index + tf.where(is_end, tf.constant(0, tf.int64), 1))
    return new_state, element

  zero = tf.constant(0, tf.int64)
  scanned = tagged.concatenate(end).scan((zero, zero), step)
  return scanned.filter(lambda e: tf.logical_or(tf.logical_not(e["end"]), e["damaged"]))


def _read_records(files: Sequence[str], sizes: Sequence[int], deterministic: bool,
                  cycle_length: int, shuffle_seed: Optional[int] = None,
                  repeat: bool = False) -> tf.data.Dataset:
  """Records of `files`, read `cycle_length` files at a time; shuffled files when seeded."""
  shards = tf.data.Dataset.from_tensor_slices(
      (tf.constant(files), tf.constant(sizes, tf.int64)))
  if shuffle_seed is not None:
    shards = shards.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
  if repeat:
    shards = shards.repeat()
  return shards.interleave(
      _read_shard, cycle_length=max(1, min(len(files), cycle_length)), block_length=1,
      num_parallel_calls=AUTOTUNE, deterministic=deterministic)


def _check_shards(ds: tf.data.Dataset, ignore_errors: bool,
                  counter: Optional[SkipCounter]) -> tf.data.Dataset:
  """Raises on a damaged-shard marker (naming the file), or drops and counts it."""
  if ignore_errors:
    def keep(e):
      def skip():
        with tf.control_dependencies([counter.op("damaged_shard", e["source"])]):
          return tf.constant(False)
      return tf.cond(e["damaged"], skip, lambda: tf.constant(True))
    ds = ds.filter(keep)
  else:
    def check(e):
      ok = tf.debugging.Assert(tf.logical_not(e["damaged"]), [
          "Damaged TFRecord file (truncated or corrupted; TensorFlow stopped reading it):",
          e["source"], "readable bytes:", e["bytes_read"], "file size:", e["size"],
          "Re-create the shard, or pass ignore_errors=True to skip it."], summarize=1)
      with tf.control_dependencies([ok]):
        return {k: tf.identity(v) for k, v in e.items()}
    ds = ds.map(check)
  return ds.map(lambda e: {"name": e["name"], "serialized": e["serialized"]})


def _zeros_like_spec(spec: tf.TensorSpec) -> tf.Tensor:
  shape = [0 if d is None else d for d in spec.shape.as_list()]
  if spec.dtype == tf.string:
    return tf.fill(shape, tf.constant(""))
  return tf.zeros(shape, spec.dtype)


def _try_map(ds: tf.data.Dataset, fn, deterministic: bool) -> tf.data.Dataset:
  """Maps `fn` over dict elements in parallel, turning failures into flagged items.

  tf.data has no try/except; a one-element dataset that ignores its error, followed by a
  fallback element, is one: the result is `(fn(element), element["name"], True)`, or
  `(zeros, element["name"], False)` when `fn` raised. Elements run in parallel on all cores.
  """

  def attempt(element):
    single = tf.data.Dataset.from_tensors(element)
    ok = single.map(lambda e: (fn(e), e["name"], tf.constant(True))).ignore_errors()
    bad = single.map(lambda e: (tf.nest.map_structure(_zeros_like_spec, ok.element_spec[0]),
                                e["name"], tf.constant(False)))
    return ok.concatenate(bad).take(1)

  return ds.interleave(attempt, cycle_length=AUTOTUNE, block_length=1,
                       num_parallel_calls=AUTOTUNE, deterministic=deterministic)


_RECORD_ERROR_HINT = (
    "(the file's TFRecord framing is intact, so the record's content is malformed: not a "
    "SequenceExample of the d3d_tf schema, an undecodable JPEG/PNG frame, or missing flow "
    "planes with with_flow=True). Pass ignore_errors=True to skip such records.")


def _check_items(ds: tf.data.Dataset, ignore_errors: bool, counter: Optional[SkipCounter],
                 what: str = "record", hint: str = _RECORD_ERROR_HINT) -> tf.data.Dataset:
  """Raises on a failed `_try_map` item (naming it), or drops and counts it."""
  if ignore_errors:
    def keep(value, name, ok):
      del value
      def skip():
        with tf.control_dependencies([counter.op("bad_record", name)]):
          return tf.constant(False)
      return tf.cond(ok, lambda: tf.constant(True), skip)
    ds = ds.filter(keep)
    return ds.map(lambda value, name, ok: value)

  def check(value, name, ok):
    assertion = tf.debugging.Assert(ok, [f"Could not parse or decode {what}", name, hint])
    with tf.control_dependencies([assertion]):
      return tf.nest.map_structure(tf.identity, value)

  return ds.map(check)


def _counter(ignore_errors: bool, skip_counter: Optional[SkipCounter]) -> Optional[SkipCounter]:
  if ignore_errors and skip_counter is None:
    return SkipCounter()
  return skip_counter


def _resolve_seed(seed: Optional[int]) -> int:
  """`seed`, or a fresh random one: every random op then gets an explicit Python-int seed.

  Python ints, never tensors: `Dataset.shuffle` fails on a tensor seed while a global seed of
  0 is set, and unseeded ops fail under `enable_op_determinism`.
  """
  return random.SystemRandom().randrange(1, 2**31 - 1) if seed is None else int(seed)


def _with_clip_seeds(ds: tf.data.Dataset, seed: int, num_pipelines: int = 1,
                     pipeline_id: int = 0) -> tf.data.Dataset:
  """Adds a stateless seed [r, index] per element (`r` from a seeded random stream).

  Both parts are drawn per iteration of the dataset: a fresh dataset built with the same
  `seed` replays the same seeds, and index = position * num_pipelines + pipeline_id keeps the
  input pipelines of a distributed job apart.
  """
  randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

  def add(index, element, r):
    position = index * num_pipelines + pipeline_id
    return dict(element, seed=tf.stack([r, position]))

  return tf.data.Dataset.zip((ds.enumerate(), randoms)).map(lambda ie, r: add(ie[0], ie[1], r))


def _options(deterministic: bool) -> tf.data.Options:
  options = tf.data.Options()
  options.deterministic = deterministic
  return options


# ----------------------------------------------------------------------------
# Training.
# ----------------------------------------------------------------------------


def train_dataset(
    file_pattern: Union[str, Sequence[str]],
    *,
    batch_size: int,
    num_frames: int = 16,
    stride: int = 1,
    crop_size: int = 112,
    with_rgb: bool = True,
    with_flow: bool = False,
    shuffle_buffer: int = 256,
    seed: Optional[int] = None,
    deterministic: bool = False,
    ignore_errors: bool = False,
    input_context: Optional[tf.distribute.InputContext] = None,
    repeat: bool = True,
    min_area: float = 0.08,
    flip: bool = True,
    aspect_ratio_range: Tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
    skip_counter: Optional[SkipCounter] = None,
    cycle_length: int = _DEFAULT_CYCLE_LENGTH,
) -> tf.data.Dataset:
  """Random training clips from video records: `(features, label)` batches.

  Per video: one clip of `num_frames` frames at `stride` from a uniform random offset (a video
  shorter than the clip loops: index `(offset + t * stride) mod N`); one random scale-and-aspect
  crop (area in [min_area, 1], aspect in `aspect_ratio_range`) resized to `crop_size`; one
  random left-right flip. RGB and flow share all three; flipped flow has its x negated.

  Args:
    file_pattern: Glob pattern(s) of TFRecord files of `records` SequenceExamples.
    batch_size: Clips per batch (per replica when `input_context` is given); the last partial
      batch is dropped.
    num_frames: Frames per clip T.
    stride: Temporal stride.
    crop_size: Output height and width S.
    with_rgb: Produce `features["rgb"]` float32 [B, T, S, S, 3] in [-1, 1].
    with_flow: Produce `features["flow"]` float32 [B, T, S, S, 2]: flow in pixels of the output
      frame divided by the record's bound (so [-1, 1] at the stored scale; see
      `processors.scale_flow`). Flow of frame i is i -> i + 1; the last frame of a video reuses
      the last plane; a 1-frame video has zero flow.
    shuffle_buffer: Records in the shuffle buffer (serialized whole videos: mind the memory).
    seed: Seed of the file order, shuffles and augmentation (a Python int). None: a random
      one.
    deterministic: Keep element order fixed despite parallelism. With `seed`, datasets built
      with the same arguments yield the same batches (tf.data also mixes in the global TF seed,
      so keep that the same too, or set it after building). As usual in tf.data, iterating
      one dataset object again continues with new shuffles rather than replaying.
    ignore_errors: Skip damaged shards and bad records (logged, counted in `skip_counter`)
      instead of failing with an error that names the file.
    input_context: `tf.distribute.InputContext`: read only this input pipeline's share of the
      files (`files[input_pipeline_id::num_input_pipelines]`).
    repeat: Repeat forever (each epoch reshuffled); False: one pass.
    min_area: Smallest crop area as a fraction of the frame.
    flip: Random left-right flips.
    aspect_ratio_range: Crop aspect (width / height) range, sampled log-uniformly.
    skip_counter: Where skips are counted; with `ignore_errors` and None a new one is made.
      Either way it is also attached to the returned dataset as `.skip_counter`.
    cycle_length: Files read concurrently (clips are decoded on all cores).

  Returns:
    A `tf.data.Dataset` of `(features, label)`, label int32 [B].
  """
  config = builders.ClipConfig(
      num_frames=num_frames, stride=stride, crop_size=crop_size, with_rgb=with_rgb,
      with_flow=with_flow, min_area=min_area, aspect_ratio_range=tuple(aspect_ratio_range),
      flip=flip)
  files, sizes = list_shards(file_pattern)
  num_pipelines, pipeline_id = 1, 0
  if input_context is not None and input_context.num_input_pipelines > 1:
    num_pipelines = input_context.num_input_pipelines
    pipeline_id = input_context.input_pipeline_id
    if len(files) < num_pipelines:
      raise ValueError(
          f"{len(files)} files cannot be sharded over {num_pipelines} input pipelines; write "
          f"at least {num_pipelines} shards. file_pattern={file_pattern!r}")
    files, sizes = files[pipeline_id::num_pipelines], sizes[pipeline_id::num_pipelines]
  counter = _counter(ignore_errors, skip_counter)
  clip_fn = builders.make_train_clip_fn(config)

  seed = _resolve_seed(seed)
  # Files are reshuffled every epoch; the epochs follow each other without a pause.
  recs = _read_records(files, sizes, deterministic, cycle_length, shuffle_seed=seed,
                       repeat=repeat)
  recs = _check_shards(recs, ignore_errors, counter)
  if shuffle_buffer > 1:
    recs = recs.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
  ds = _with_clip_seeds(recs, seed + 2, num_pipelines, pipeline_id)
  ds = _try_map(ds, lambda e: clip_fn(e["serialized"], e["name"], e["seed"]), deterministic)
  ds = _check_items(ds, ignore_errors, counter)
  ds = ds.batch(batch_size, drop_remainder=True)
  ds = ds.prefetch(AUTOTUNE).with_options(_options(deterministic))
  ds.skip_counter = counter
  return ds


def distributed_train_dataset(strategy: tf.distribute.Strategy, global_batch_size: int,
                              **kw) -> tf.distribute.DistributedDataset:
  """`train_dataset` per input pipeline of `strategy`, each replica getting its share.

  Args:
    strategy: The distribution strategy.
    global_batch_size: Batch size summed over replicas.
    **kw: `train_dataset` arguments (`file_pattern` included) except `batch_size` and
      `input_context`.
  """

  def dataset_fn(input_context):
    return train_dataset(
        batch_size=input_context.get_per_replica_batch_size(global_batch_size),
        input_context=input_context, **kw)

  return strategy.distribute_datasets_from_function(dataset_fn)


# ----------------------------------------------------------------------------
# Evaluation.
# ----------------------------------------------------------------------------


def _unbatch_views(features: Dict[str, tf.Tensor], label: tf.Tensor, video_index: tf.Tensor,
                   num_views) -> tf.data.Dataset:
  """One element per view, all views of a video consecutive, in clip-major order."""
  views = {k: v for k, v in features.items() if k != VIDEO_ID}
  views[VIDEO_ID] = tf.fill([num_views], features[VIDEO_ID])
  views[VIDEO_INDEX] = tf.fill([num_views], tf.cast(video_index, tf.int32))
  views[VIEW_INDEX] = tf.range(num_views, dtype=tf.int32)
  return tf.data.Dataset.from_tensor_slices((views, tf.fill([num_views], label)))


def _eval_pipeline(file_pattern, view_fn, num_views: int, batch_size: int, ignore_errors: bool,
                   skip_counter: Optional[SkipCounter]) -> tf.data.Dataset:
  """Records in file order -> all views of each video -> one element per view, batched."""
  files, sizes = list_shards(file_pattern)
  counter = _counter(ignore_errors, skip_counter)
  recs = _read_records(files, sizes, True, 1)  # One file at a time: a simple order.
  recs = _check_shards(recs, ignore_errors, counter)
  ds = _try_map(recs, lambda e: view_fn(e["serialized"], e["name"]), True)
  ds = _check_items(ds, ignore_errors, counter)
  ds = ds.enumerate().flat_map(
      lambda i, item: _unbatch_views(item[0], item[1], i, num_views))
  ds = ds.batch(batch_size).prefetch(AUTOTUNE).with_options(_options(True))
  ds.skip_counter = counter
  return ds


def eval_dataset(
    file_pattern: Union[str, Sequence[str]],
    *,
    num_clips: int = 4,
    num_crops: int = 1,
    num_frames: int = 16,
    stride: int = 1,
    crop_size: int = 112,
    with_rgb: bool = True,
    with_flow: bool = False,
    batch_size: Optional[int] = None,
    crop_fraction: float = 0.875,
    ignore_errors: bool = False,
    skip_counter: Optional[SkipCounter] = None,
) -> tf.data.Dataset:
  """Multi-view testing: K evenly spaced clips x {1, 3} crops per video, `(features, label)`.

  Each element is one view; the V = num_clips * num_crops views of a video are consecutive, in
  clip-major order: view v = clip * num_crops + crop (crops: centre, or start/centre/end along
  the long side). Videos come in a fixed order: sorted files, each in record order.
  `features["video_index"]` (int32, position of the video in the output), `["view_index"]`
  and `["video_id"]` (string) let an evaluator average logits per video; batches may split a
  video's views when `batch_size` is not a multiple of V.

  Args:
    file_pattern: Glob pattern(s) of TFRecord files.
    num_clips: Temporal clips K per video, evenly spaced (`processors.linspace_offsets`); 0:
      the whole video as one clip (`full_video_dataset`, batch 1).
    num_crops: 1 (centre) or 3 spatial crops.
    num_frames: Frames per clip T.
    stride: Temporal stride.
    crop_size: Output size S.
    with_rgb: Produce `rgb` [B, T, S, S, 3].
    with_flow: Produce `flow` [B, T, S, S, 2] (same scaling as training).
    batch_size: Views per batch; None: V (one video per batch).
    crop_fraction: Crop side as a fraction of the frame's short side, before the resize to S.
    ignore_errors: Skip damaged shards / bad records (counted) instead of failing.
    skip_counter: Where skips are counted.

  Returns:
    A `tf.data.Dataset` of `(features, label)`, label int32 [B].
  """
  if num_clips == 0:
    if num_crops != 1:
      raise ValueError(f"Full-video evaluation uses the centre crop; num_crops must be 1. "
                       f"Received: num_crops={num_crops}")
    return full_video_dataset(
        file_pattern, stride=stride, crop_size=crop_size, with_rgb=with_rgb,
        with_flow=with_flow, min_frames=num_frames, crop_fraction=crop_fraction,
        ignore_errors=ignore_errors, skip_counter=skip_counter)
  if num_clips < 0:
    raise ValueError(f"num_clips must be >= 0. Received: num_clips={num_clips}")
  config = builders.ClipConfig(
      num_frames=num_frames, stride=stride, crop_size=crop_size, with_rgb=with_rgb,
      with_flow=with_flow, num_clips=num_clips, num_crops=num_crops,
      crop_fraction=crop_fraction)
  return _eval_pipeline(file_pattern, builders.make_eval_views_fn(config), config.num_views,
                        batch_size or config.num_views, ignore_errors, skip_counter)


def full_video_dataset(
    file_pattern: Union[str, Sequence[str]],
    *,
    stride: int = 1,
    crop_size: int = 112,
    with_rgb: bool = True,
    with_flow: bool = False,
    min_frames: int = 16,
    crop_fraction: float = 0.875,
    ignore_errors: bool = False,
    skip_counter: Optional[SkipCounter] = None,
) -> tf.data.Dataset:
  """Fully convolutional testing (S3D-G): every frame of a video, centre crop, batch 1.

  Features are [1, L, S, S, C] with L = ceil(N / stride) frames, looped (modulo N) up to
  `min_frames` for short videos; plus `video_index`, `view_index` (0) and `video_id` as in
  `eval_dataset`.
  """
  config = builders.ClipConfig(
      num_frames=min_frames, stride=stride, crop_size=crop_size, with_rgb=with_rgb,
      with_flow=with_flow, crop_fraction=crop_fraction)
  view_fn = builders.make_eval_views_fn(config, full_video=True, min_frames=min_frames)
  return _eval_pipeline(file_pattern, view_fn, 1, 1, ignore_errors, skip_counter)


# ----------------------------------------------------------------------------
# Raw videos.
# ----------------------------------------------------------------------------


def raw_video_dataset(
    paths: Sequence[str],
    labels: Optional[Sequence[int]] = None,
    *,
    num_frames: int = 16,
    stride: int = 1,
    crop_size: int = 112,
    training: bool,
    with_rgb: bool = True,
    with_flow: bool = False,
    batch_size: Optional[int] = None,
    short_side: Optional[int] = 256,
    seed: Optional[int] = None,
    deterministic: bool = False,
    repeat: Optional[bool] = None,
    min_area: float = 0.08,
    flip: bool = True,
    aspect_ratio_range: Tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
    num_clips: int = 1,
    num_crops: int = 1,
    crop_fraction: float = 0.875,
    flow_algorithm: str = "dis",
    flow_bound: float = records.DEFAULT_FLOW_BOUND,
    ignore_errors: bool = False,
    skip_counter: Optional[SkipCounter] = None,
) -> tf.data.Dataset:
  """The same clips as `train_dataset` / `eval_dataset`, read from video files with PyAV.

  Frames are decoded in `tf.numpy_function` inside a parallel map, seeking to the sampled
  frames (`raw_video.read_frames`), resized to `short_side` (as the records are stored), and
  flow is computed on the fly (DIS by default) and clipped to `flow_bound` pixels, which makes
  the inputs match records quantized with that bound. An unreadable video raises an error that
  names the file (or, with `ignore_errors`, is skipped and counted).

  Args:
    paths: Video files (mp4/avi/webm/mkv ...).
    labels: Class index per path; None: label -1.
    num_frames: Frames per clip T.
    stride: Temporal stride.
    crop_size: Output size S.
    training: Random clip, crop and flip per video, shuffled (`seed`) and repeated; False:
      `num_clips` x `num_crops` views per video in clip-major order, with `video_index`,
      `view_index` and `video_id` (the path) features, as `eval_dataset`.
    with_rgb: Produce `rgb`.
    with_flow: Produce `flow`.
    batch_size: Clips (training) or views (evaluation) per batch; None: 1 for training, V for
      evaluation.
    short_side: Frames are resized to this short side before cropping; None: native size.
    seed: Seed of the order and augmentation.
    deterministic: Fixed order despite parallelism.
    repeat: Repeat forever; None: `training`.
    min_area: Training crop area range start.
    flip: Training flips.
    aspect_ratio_range: Training crop aspect range.
    num_clips: Evaluation clips per video.
    num_crops: Evaluation crops per clip (1 or 3).
    crop_fraction: Evaluation crop side / short side.
    flow_algorithm: `optical_flow` algorithm for on-the-fly flow.
    flow_bound: Flow clip bound B in pixels (the flow input is flow / B).
    ignore_errors: Skip unreadable videos (counted) instead of failing.
    skip_counter: Where skips are counted.

  Returns:
    A `tf.data.Dataset` of `(features, label)`.
  """
  paths = [str(p) for p in paths]
  if not paths:
    raise ValueError("raw_video_dataset needs at least one path.")
  if labels is None:
    labels = [-1] * len(paths)
  if len(labels) != len(paths):
    raise ValueError(f"Expected one label per path. Received {len(labels)} labels for "
                     f"{len(paths)} paths.")
  repeat = training if repeat is None else repeat
  config = builders.ClipConfig(
      num_frames=num_frames, stride=stride, crop_size=crop_size, with_rgb=with_rgb,
      with_flow=with_flow, min_area=min_area, aspect_ratio_range=tuple(aspect_ratio_range),
      flip=flip, num_clips=num_clips, num_crops=num_crops, crop_fraction=crop_fraction)
  counter = _counter(ignore_errors, skip_counter)
  videos = tf.data.Dataset.from_tensor_slices(
      {"name": tf.constant(paths), "label": tf.constant(labels, tf.int32)})

  if training:
    clip_fn = builders.make_raw_train_clip_fn(config, short_side, flow_bound, flow_algorithm)

    seed = _resolve_seed(seed)
    elements = videos.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    elements = _with_clip_seeds(elements.repeat() if repeat else elements, seed + 1)
    fn = lambda e: (clip_fn(e["name"], e["seed"]), e["label"])
  else:
    views_fn = builders.make_raw_eval_views_fn(config, short_side, flow_bound, flow_algorithm)
    elements = videos.repeat() if repeat else videos

    def fn(e):
      features = views_fn(e["name"])
      features[VIDEO_ID] = e["name"]
      return features, e["label"]

  if ignore_errors:
    ds = _try_map(elements, fn, deterministic or not training)
    ds = _check_items(ds, True, counter, what="video")
  else:
    ds = elements.map(fn, num_parallel_calls=AUTOTUNE,
                      deterministic=deterministic or not training)
  if training:
    ds = ds.batch(batch_size or 1, drop_remainder=True)
  else:
    num_views = config.num_views
    ds = ds.enumerate().flat_map(
        lambda i, item: _unbatch_views(item[0], item[1], i, num_views))
    ds = ds.batch(batch_size or num_views)
  ds = ds.prefetch(AUTOTUNE).with_options(_options(deterministic or not training))
  ds.skip_counter = counter
  return ds
