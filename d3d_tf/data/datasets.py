"""The public tf.data pipelines: training clips, multi-view evaluation, full videos, raw videos.

Records are read with interleaved parallel `TFRecordDataset`s and only the sampled frames are
decoded, in-graph. RGB and flow of a clip share the frame indices, crop box and flip (see
`builders`), so the D3D flow teacher and RGB student see the same clip.

The CLIs turn on TensorFlow's pooling CPU allocator (`host_memory.request_pooled_allocator`):
without it every multi-megabyte clip tensor costs fresh, page-faulted memory.

Damaged data never hangs the pipeline and is always reported with its file (see `shards`):
with `ignore_errors=False` an error names the file (and record index); with
`ignore_errors=True` it is skipped, logged and counted in a `SkipCounter`. After a damaged
shard's first bad record TensorFlow cannot resynchronise, so the rest of that file is skipped
too (counted once, as one damaged shard).
"""

import random
from typing import Dict, Optional, Sequence, Tuple, Union

import tensorflow as tf

from d3d_tf.common import defaults
from d3d_tf.data import builders
from d3d_tf.data import record_source
from d3d_tf.data import records
from d3d_tf.data import shards

AUTOTUNE = tf.data.AUTOTUNE

# Re-exported: callers count skips and list shards through this module.
SkipCounter = shards.SkipCounter
list_shards = shards.list_shards

# Feature names.
RGB = records.RGB
FLOW = records.FLOW
LABEL = records.LABEL
UNLABELLED = records.UNLABELLED
VIDEO_INDEX = builders.VIDEO_INDEX
VIDEO_ID = builders.VIDEO_ID
VIEW_INDEX = builders.VIEW_INDEX
# Evaluation centre crop: side / short side (the Inception / I3D convention, 224 of 256).
EVAL_CROP_FRACTION = defaults.CROP_FRACTION

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


def _finish(ds: tf.data.Dataset, deterministic: bool) -> tf.data.Dataset:
  """The last stage of every pipeline: prefetch and the order option.

  Nothing is attached to the dataset (an attribute would not survive the caller's next `.map`):
  a caller that wants the skip counts passes its own `SkipCounter`.
  """
  options = tf.data.Options()
  options.deterministic = deterministic
  return ds.prefetch(AUTOTUNE).with_options(options)


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
    min_area: float = defaults.MIN_AREA,
    flip: bool = True,
    aspect_ratio_range: Tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
    skip_counter: Optional[SkipCounter] = None,
    cycle_length: int = shards.DEFAULT_CYCLE_LENGTH,
    unlabelled_pattern: Union[str, Sequence[str], None] = None,
    uint8_clips: bool = False,
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
    skip_counter: Where skips are counted (pass one to read the counts); with `ignore_errors`
      and None the skips are still logged.
    cycle_length: Files read concurrently (clips are decoded on all cores).
    unlabelled_pattern: Glob pattern(s) of more training records whose labels are replaced by
      `UNLABELLED` (-1), for distillation. Their clips are mixed into the stream
      clip by clip (`sample_from_datasets`, seeded), in proportion to the two record counts
      (counting reads the files once), so each clip of either set is seen about equally often.
    uint8_clips: Crop `crop_size` pixels at a random position without scale jitter or resize
      (`min_area` and `aspect_ratio_range` unused; frames must be at least that large) and
      yield uint8 clips: RGB as stored, flow as quantized in the records. `D3DDistiller` maps
      them to the float inputs above on the accelerator (`processors.to_unit_on_device`):
      about half the pipeline's CPU a clip (docs/PERFORMANCE.md, section 6.2).

  Returns:
    A `tf.data.Dataset` of `(features, label)`, label int32 [B].
  """
  config = builders.ClipConfig(
      num_frames=num_frames, stride=stride, crop_size=crop_size, with_rgb=with_rgb,
      with_flow=with_flow, min_area=min_area, aspect_ratio_range=tuple(aspect_ratio_range),
      flip=flip, uint8_clips=uint8_clips)
  num_pipelines, pipeline_id = 1, 0
  if input_context is not None and input_context.num_input_pipelines > 1:
    num_pipelines = input_context.num_input_pipelines
    pipeline_id = input_context.input_pipeline_id
  counter = shards.make_counter(ignore_errors, skip_counter)
  clip_fn = builders.make_clip_fn(record_source.opener(config, training=True), config)

  def clips(pattern, seed):
    files, sizes = list_shards(pattern)
    if len(files) < num_pipelines:
      raise ValueError(
          f"{len(files)} files cannot be sharded over {num_pipelines} input pipelines; write "
          f"at least {num_pipelines} shards. file_pattern={pattern!r}")
    files, sizes = files[pipeline_id::num_pipelines], sizes[pipeline_id::num_pipelines]
    if uint8_clips:
      _check_frames_hold_the_crop(files, crop_size, pattern)
    # Files are reshuffled every epoch; the epochs follow each other without a pause.
    recs = shards.read_records(files, sizes, deterministic, cycle_length, shuffle_seed=seed,
                               repeat=repeat)
    recs = shards.check_shards(recs, ignore_errors, counter)
    if shuffle_buffer > 1:
      recs = recs.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    ds = _with_clip_seeds(recs, seed + 2, num_pipelines, pipeline_id)
    ds = shards.try_map(ds, clip_fn, deterministic)
    return shards.check_items(ds, ignore_errors, counter), files

  seed = _resolve_seed(seed)
  ds, files = clips(file_pattern, seed)
  if unlabelled_pattern is not None:
    # Seeds of their own (seed + 10...): the unlabelled clips' crops never repeat the others'.
    unlabelled, unlabelled_files = clips(unlabelled_pattern, seed + 10)
    ds = mix_unlabelled(ds, unlabelled, count_records(files), count_records(unlabelled_files),
                        seed + 20)
  return _finish(ds.batch(batch_size, drop_remainder=True), deterministic)


def _check_frames_hold_the_crop(files: Sequence[str], crop_size: int, pattern) -> None:
  """`uint8_clips` cuts the crop without a resize: refuse frames smaller than it up front
  (the in-graph check of later records would only surface as a skipped or failed record)."""
  side = records.smallest_short_side(files)
  if 0 < side < crop_size:
    raise ValueError(
        f"uint8_clips (--uint8_clips) crops {crop_size} px without a resize, but the records of "
        f"{pattern!r} have a short side of {side} px: convert them at --short_side >= "
        f"{crop_size} (256 for a 224 crop), or lower --crop_size, or drop --uint8_clips.")


def count_records(files: Sequence[str]) -> int:
  """Records in `files` (reads them once)."""
  return int(tf.data.TFRecordDataset(list(files)).reduce(
      tf.constant(0, tf.int64), lambda n, _: n + 1))


def mix_unlabelled(labelled: tf.data.Dataset, unlabelled: tf.data.Dataset, num_labelled: int,
                   num_unlabelled: int, seed: int) -> tf.data.Dataset:
  """`(features, label)` clips of both, drawn at random in proportion to the counts; the
  unlabelled ones' labels replaced by `UNLABELLED`. Deterministic for a given `seed`."""
  hidden = unlabelled.map(lambda features, label: (
      features, tf.fill(tf.shape(label), tf.constant(UNLABELLED, label.dtype))))
  total = float(num_labelled + num_unlabelled)
  return tf.data.Dataset.sample_from_datasets(
      [labelled, hidden], weights=[num_labelled / total, num_unlabelled / total], seed=seed)


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


def _one_element_per_view(videos: tf.data.Dataset, num_views: int) -> tf.data.Dataset:
  """Videos of V views each -> their views, numbered by video (`video_index`) and view."""
  return videos.enumerate().flat_map(
      lambda i, item: _unbatch_views(item[0], item[1], i, num_views))


def _eval_pipeline(file_pattern, view_fn, num_views: int, batch_size: int, ignore_errors: bool,
                   skip_counter: Optional[SkipCounter]) -> tf.data.Dataset:
  """Records in file order -> all views of each video -> one element per view, batched."""
  files, sizes = list_shards(file_pattern)
  counter = shards.make_counter(ignore_errors, skip_counter)
  recs = shards.read_records(files, sizes, True, 1)  # One file at a time: a simple order.
  recs = shards.check_shards(recs, ignore_errors, counter)
  ds = shards.try_map(recs, view_fn, True)
  ds = shards.check_items(ds, ignore_errors, counter)
  return _finish(_one_element_per_view(ds, num_views).batch(batch_size), True)


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
    crop_fraction: float = EVAL_CROP_FRACTION,
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
  view_fn = builders.make_clip_fn(record_source.opener(config, training=False), config,
                                  builders.EVAL)
  return _eval_pipeline(file_pattern, view_fn, config.num_views,
                        batch_size or config.num_views, ignore_errors, skip_counter)


def full_video_dataset(
    file_pattern: Union[str, Sequence[str]],
    *,
    stride: int = 1,
    crop_size: int = 112,
    with_rgb: bool = True,
    with_flow: bool = False,
    min_frames: int = 16,
    crop_fraction: float = EVAL_CROP_FRACTION,
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
  view_fn = builders.make_clip_fn(record_source.opener(config, training=False), config,
                                  builders.FULL_VIDEO)
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
    short_side: Optional[int] = defaults.SHORT_SIDE,
    seed: Optional[int] = None,
    deterministic: bool = False,
    repeat: Optional[bool] = None,
    min_area: float = defaults.MIN_AREA,
    flip: bool = True,
    aspect_ratio_range: Tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
    num_clips: int = 1,
    num_crops: int = 1,
    crop_fraction: float = EVAL_CROP_FRACTION,
    flow_algorithm: str = "dis",
    flow_bound: float = records.DEFAULT_FLOW_BOUND,
    ignore_errors: bool = False,
    skip_counter: Optional[SkipCounter] = None,
) -> tf.data.Dataset:
  """The same clips as `train_dataset` / `eval_dataset`, read from video files with PyAV.

  Frames are decoded in `tf.numpy_function` inside a parallel map, seeking to the sampled
  frames (`d3d_tf.video.raw_video.read_frames`), resized to `short_side` (as the records are stored), and
  flow is computed on the fly (DIS by default) and clipped to `flow_bound` pixels, which makes
  the inputs match records quantized with that bound. An unreadable video raises an error that
  names the file (or, with `ignore_errors`, is skipped and counted).

  Args (the clip and augmentation arguments are `train_dataset`'s and `eval_dataset`'s):
    paths: Video files (mp4/avi/webm/mkv ...).
    labels: Class index per path; None: label -1.
    training: Random clip, crop and flip per video, shuffled (`seed`) and repeated; False:
      `num_clips` x `num_crops` views per video in clip-major order, with `video_index`,
      `view_index` and `video_id` (the path) features, as `eval_dataset`.
    batch_size: Clips (training) or views (evaluation) per batch; None: 1 for training, V for
      evaluation.
    short_side: Frames are resized to this short side before cropping; None: native size.
    repeat: Repeat forever; None: `training`.
    flow_algorithm: `d3d_tf.video.optical_flow` algorithm for on-the-fly flow.
    flow_bound: Flow clip bound B in pixels (the flow input is flow / B).

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
  counter = shards.make_counter(ignore_errors, skip_counter)
  videos = tf.data.Dataset.from_tensor_slices(
      {"name": tf.constant(paths), "label": tf.constant(labels, tf.int32)})

  # PyAV and OpenCV are imported only by the pipelines that read video files.
  from d3d_tf.data import video_source  # pylint: disable=g-import-not-at-top
  open_video = video_source.opener(config, short_side, flow_bound, flow_algorithm)
  fn = builders.make_clip_fn(open_video, config, builders.TRAIN if training else builders.EVAL)
  if training:
    seed = _resolve_seed(seed)
    elements = videos.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    elements = _with_clip_seeds(elements.repeat() if repeat else elements, seed + 1)
  else:
    elements = videos.repeat() if repeat else videos

  if ignore_errors:
    ds = shards.try_map(elements, fn, deterministic or not training)
    ds = shards.check_items(ds, True, counter, what="video")
  else:
    ds = elements.map(fn, num_parallel_calls=AUTOTUNE,
                      deterministic=deterministic or not training)
  if training:
    ds = ds.batch(batch_size or 1, drop_remainder=True)
  else:
    ds = _one_element_per_view(ds, config.num_views).batch(batch_size or config.num_views)
  return _finish(ds, deterministic or not training)
