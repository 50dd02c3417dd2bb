"""The public tf.data pipelines: training clips here; multi-view evaluation, full videos and
raw videos in `view_datasets`, re-exported (`datasets.eval_dataset`, ...).

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

from typing import Optional, Sequence, Tuple, Union

import tensorflow as tf

from d3d_tf.common import defaults
from d3d_tf.data import builders
from d3d_tf.data import record_source
from d3d_tf.data import records
from d3d_tf.data import shards
from d3d_tf.data import stream_steps
from d3d_tf.data import view_datasets

AUTOTUNE = stream_steps.AUTOTUNE

# Re-exported: callers count skips and list shards through this module.
SkipCounter = shards.SkipCounter
list_shards = shards.list_shards

# Re-exported: the evaluation and raw-video pipelines.
eval_dataset = view_datasets.eval_dataset
full_video_dataset = view_datasets.full_video_dataset
raw_video_dataset = view_datasets.raw_video_dataset
EVAL_CROP_FRACTION = view_datasets.EVAL_CROP_FRACTION

# Feature names.
RGB = records.RGB
FLOW = records.FLOW
LABEL = records.LABEL
UNLABELLED = records.UNLABELLED
VIDEO_INDEX = builders.VIDEO_INDEX
VIDEO_ID = builders.VIDEO_ID
VIEW_INDEX = builders.VIEW_INDEX


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
    resize_on_device: bool = False,
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
    resize_on_device: The same clips as the float ones (same crops, scale jitter and flips),
      but the crops leave the pipeline uint8 [B, T, h, w, C] (padded to the batch's largest,
      at most 2S x 2S), with their resize tables (`device_resize.TABLES`); `D3DDistiller`
      resizes them on the accelerator (`device_resize.model_input`), equal to the float clips
      to float rounding. Batch shapes vary (XLA compiles each once). Records only.

  Returns:
    A `tf.data.Dataset` of `(features, label)`, label int32 [B].
  """
  config = builders.ClipConfig(
      num_frames=num_frames, stride=stride, crop_size=crop_size, with_rgb=with_rgb,
      with_flow=with_flow, min_area=min_area, aspect_ratio_range=tuple(aspect_ratio_range),
      flip=flip, uint8_clips=uint8_clips, resize_on_device=resize_on_device)
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
    ds = stream_steps.with_clip_seeds(recs, seed + 2, num_pipelines, pipeline_id)
    ds = shards.try_map(ds, clip_fn, deterministic)
    return shards.check_items(ds, ignore_errors, counter), files

  seed = stream_steps.resolve_seed(seed)
  ds, files = clips(file_pattern, seed)
  if unlabelled_pattern is not None:
    # Seeds of their own (seed + 10...): the unlabelled clips' crops never repeat the others'.
    unlabelled, unlabelled_files = clips(unlabelled_pattern, seed + 10)
    ds = mix_unlabelled(ds, unlabelled, count_records(files), count_records(unlabelled_files),
                        seed + 20)
  # Crops resized on the device vary in size: padded to the batch's largest as it is copied.
  batch = ds.padded_batch if resize_on_device else ds.batch
  return stream_steps.finish(batch(batch_size, drop_remainder=True), deterministic)


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
