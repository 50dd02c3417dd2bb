"""Peak memory of predict and extract_features on long videos, and extraction throughput.

Streaming reads (`d3d_tf.video.stream`) should make peak resident memory independent of the
video's length. This generates 320x240, 30 fps videos of `--minutes` (default 1; add e.g.
`--minutes 1,20` for the long one, which takes minutes to encode), then, per video:
  predict_rss_mb          peak RSS of `python -m d3d_tf.predict` (default: --num_clips spread)
  predict_windows_rss_mb  the same with --sliding_window=2 (every 2 s window classified)
  extract_rss_mb          peak RSS of `python -m d3d_tf.extract_features`
measured on each command's own process (os.wait4). Then, in this process on the first video:
  end_to_end_windows_per_s  extract_features' windows / wall seconds (decode + network)
  model_windows_per_s       the cut model alone on the same windows, pre-decoded
  ratio                     end_to_end / model (1.0: decoding fully hidden behind compute)

Prints one JSON object per line. Usage:
  python benchmarks/long_video.py [--minutes 1,20] [--depth_multiplier 0.25] [--num_frames 8]
    [--crop_size 64] [--batch_size 8] [--output FILE]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import av  # noqa: E402
import numpy as np  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from d3d_tf.common import machine  # noqa: E402


cpu_model = machine.cpu_model


def write_video(path: str, minutes: float, fps: int = 30) -> None:
  """A 320x240 H.264 video: a moving bar over slowly changing noise (cheap to encode)."""
  rng = np.random.default_rng(0)
  base = rng.integers(0, 255, (240, 320, 3), np.uint8)
  with av.open(path, "w") as container:
    stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    for k in range(int(minutes * 60 * fps)):
      image = np.roll(base, k, axis=1)
      image[:, (5 * k) % 320] = 255
      for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def make_model(path: str, args) -> None:
  from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier  # pylint: disable=g-import-not-at-top
  model = S3DGClassifier(
      S3DGBackbone(depth_multiplier=args.depth_multiplier), num_classes=10,
      clip_geometry=ClipGeometry(num_frames=args.num_frames, crop_size=args.crop_size,
                                 labels=tuple(f"class{i}" for i in range(10))))
  model.save(path)


def peak_rss_mb(argv) -> float:
  """Peak resident memory of one command, in MB (its own process, not this one)."""
  env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  process = subprocess.Popen([sys.executable, "-m", *argv], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  _, status, usage = os.wait4(process.pid, 0)
  if status != 0:
    raise RuntimeError(f"{argv[0]} failed: {process.stderr.read().decode()[-2000:]}")
  return round(usage.ru_maxrss / 1024.0, 1)  # Linux: kilobytes.


def throughput(video: str, model_path: str, work: str, args) -> dict:
  from d3d_tf.inference import feature_model  # pylint: disable=g-import-not-at-top
  from d3d_tf.inference import features_config  # pylint: disable=g-import-not-at-top
  from d3d_tf.inference import features_lib  # pylint: disable=g-import-not-at-top
  from d3d_tf.video import stream  # pylint: disable=g-import-not-at-top
  config = features_config.FeaturesConfig(
      model=model_path, videos=video, output_dir=os.path.join(work, "throughput"),
      batch_size=args.batch_size, quiet=True)
  model = feature_model.load(model_path)
  model.features_fn(np.zeros((args.batch_size, 1, args.num_frames, args.crop_size,
                             args.crop_size, 3),
                             np.float32))  # Traced before timing.
  start = time.perf_counter()
  counts = features_lib.extract(config)
  end_to_end = counts["windows"] / (time.perf_counter() - start)
  clips = np.stack([feature_model.preprocess_window(w.frames, model.geometry) for w in
                    stream.iter_windows(video, args.num_frames, short_side=256)])
  start = time.perf_counter()
  for i in range(0, len(clips), args.batch_size):
    model.features_fn(clips[i:i + args.batch_size])
  alone = len(clips) / (time.perf_counter() - start)
  return dict(windows=counts["windows"], end_to_end_windows_per_s=round(end_to_end, 2),
              model_windows_per_s=round(alone, 2), ratio=round(end_to_end / alone, 3))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--minutes", default="1", help="Comma-separated video lengths.")
  parser.add_argument("--depth_multiplier", type=float, default=0.25)
  parser.add_argument("--num_frames", type=int, default=8)
  parser.add_argument("--crop_size", type=int, default=64)
  parser.add_argument("--batch_size", type=int, default=8)
  parser.add_argument("--output", default="")
  args = parser.parse_args()
  lines = []

  def emit(record):
    record.update(cpu=cpu_model(), model=f"S3D-G x{args.depth_multiplier:g} "
                  f"{args.num_frames}x{args.crop_size}")
    lines.append(json.dumps(record))
    print(lines[-1], flush=True)

  with tempfile.TemporaryDirectory() as work:
    model_path = os.path.join(work, "model.keras")
    make_model(model_path, args)
    videos = []
    for minutes in [float(m) for m in args.minutes.split(",")]:
      path = os.path.join(work, f"video_{minutes:g}min.mp4")
      start = time.perf_counter()
      write_video(path, minutes)
      videos.append(path)
      model = f"--model={model_path}"
      emit(dict(
          minutes=minutes, encode_seconds=round(time.perf_counter() - start, 1),
          predict_rss_mb=peak_rss_mb(["d3d_tf.predict", model, f"--video={path}"]),
          predict_windows_rss_mb=peak_rss_mb(["d3d_tf.predict", model, f"--video={path}",
                                              "--sliding_window=2"]),
          extract_rss_mb=peak_rss_mb([
              "d3d_tf.extract_features", model, f"--videos={path}", "--quiet",
              f"--output_dir={os.path.join(work, f'features_{minutes:g}')}",
              f"--batch_size={args.batch_size}"])))
    emit(dict(minutes=float(args.minutes.split(",")[0]),
              **throughput(videos[0], model_path, work, args)))
  if args.output:
    with open(args.output, "w", encoding="utf-8") as f:
      f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
  main()
