"""Evaluation views of records (multi-view, full video) and clips of raw video files.

An evaluation pipeline reads videos in a fixed order and yields one element per view, the
views of a video consecutive, with `video_index`, `view_index` and `video_id` features for
averaging logits per video. Raw video files (PyAV) give the same clips as the records, for
training or evaluation. Import them through `datasets`, which re-exports them.
"""

from typing import Dict, Optional, Sequence, Tuple, Union

import tensorflow as tf

from d3d_tf.common import defaults
from d3d_tf.data import builders
from d3d_tf.data import record_source
from d3d_tf.data import records
from d3d_tf.data import shards
from d3d_tf.data import stream_steps

AUTOTUNE = stream_steps.AUTOTUNE
SkipCounter = shards.SkipCounter

VIDEO_INDEX = builders.VIDEO_INDEX
VIDEO_ID = builders.VIDEO_ID
VIEW_INDEX = builders.VIEW_INDEX
# Evaluation centre crop: side / short side (the Inception / I3D convention, 224 of 256).
EVAL_CROP_FRACTION = defaults.CROP_FRACTION


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
  files, sizes = shards.list_shards(file_pattern)
  counter = shards.make_counter(ignore_errors, skip_counter)
  recs = shards.read_records(files, sizes, True, 1)  # One file at a time: a simple order.
  recs = shards.check_shards(recs, ignore_errors, counter)
  ds = shards.try_map(recs, view_fn, True)
  ds = shards.check_items(ds, ignore_errors, counter)
  return stream_steps.finish(_one_element_per_view(ds, num_views).batch(batch_size), True)


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
    seed = stream_steps.resolve_seed(seed)
    elements = videos.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    elements = stream_steps.with_clip_seeds(elements.repeat() if repeat else elements, seed + 1)
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
  return stream_steps.finish(ds, deterministic or not training)
