"""CPU latency of one S3D-G clip in Keras, a SavedModel, ONNX Runtime and LiteRT.

Full-size S3D-G (depth multiplier 1, 400 classes; weights do not change the cost) is exported
the way `d3d_tf.export` does for each target (`serving/portable.py`: uint8 clips in,
normalisation inside) and timed on the same random uint8 clips:

  keras        the Keras model in a `tf.function` (what evaluate and predict run)
  saved_model  the same function saved and loaded with `tf.saved_model` (TF Serving's graph)
  onnxruntime  the `.onnx` file (tf2onnx, opset 17) on ONNX Runtime's CPU provider, traced
               with native 3D ops as `d3d_tf.export` writes it
  onnxruntime_2d  the same traced with every 3D conv and pool as 2D ops over frames
  litert       the `.tflite` file on LiteRT's interpreter (XNNPACK), float32
  litert_<q>   the same, quantised (`--quantize float16 dynamic_int8 int8`); full int8 is
               calibrated on `--calibration_clips` random clips: enough for timing (the cost
               does not depend on the ranges), not for accuracy (benchmarks/int8_agreement.py)

Each runtime runs `--warmup` times, then `--repeats` times; the median is reported with
clips/s and the ratio of Keras's median to it (> 1: faster than Keras). Every runtime uses its
default thread count. One JSON object per line, the first describing the machine.

Usage: python benchmarks/inference_runtimes.py [--frames 16 64] [--batch 1 4] [--size 224]
  [--quantize dynamic_int8 int8] [--calibration_clips 4] [--output FILE]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from d3d_tf.common import machine  # noqa: E402
from d3d_tf.data import processors  # noqa: E402
from d3d_tf.inference import runtimes  # noqa: E402
from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier  # noqa: E402
from d3d_tf.models import frame_ops_policy  # noqa: E402
from d3d_tf.serving import litert_export  # noqa: E402
from d3d_tf.serving import onnx_export  # noqa: E402
from d3d_tf.serving import portable  # noqa: E402

NUM_CLASSES = 400


cpu_model = machine.cpu_model


def median_seconds(fn, clips, warmup, repeats):
  for _ in range(warmup):
    fn(clips)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn(clips)
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def random_representative(clip_shape, count, seed=1):
  """int8 calibration clips: `count` random uint8 `[1, *clip_shape]` clips."""
  rng = np.random.default_rng(seed)

  def clips():
    for _ in range(count):
      yield [rng.integers(0, 256, (1,) + tuple(clip_shape), dtype=np.uint8)]

  return clips


def build_runtimes(frames, size, quantize, scratch, calibration_clips):
  """name -> (clips -> logits), with the seconds each export took."""
  labels = [str(i) for i in range(NUM_CLASSES)]
  model = S3DGClassifier(S3DGBackbone(), num_classes=NUM_CLASSES,
                         clip_geometry=ClipGeometry(num_frames=frames, crop_size=size,
                                                    labels=tuple(labels)))
  fns, export_seconds = {}, {}

  @tf.function(input_signature=[portable.clip_spec(model.clip_geometry)])
  def keras_fn(clips):
    return model(processors.normalize_rgb(clips), training=False)

  fns["keras"] = lambda x: keras_fn(tf.constant(x)).numpy()

  start = time.perf_counter()
  function, _ = portable.clip_function(model, model.clip_geometry)
  holder = tf.Module()
  holder.variables_to_save = [v.value for v in model.variables]
  saved_dir = os.path.join(scratch, "saved_model")
  tf.saved_model.save(holder, saved_dir, signatures={"serving_default": function})
  serve = tf.saved_model.load(saved_dir).signatures["serving_default"]
  export_seconds["saved_model"] = time.perf_counter() - start
  fns["saved_model"] = lambda x: serve(frames=tf.constant(x))["logits"].numpy()

  frame_ops = frame_ops_policy.FormulationPolicy(mode="2d", device="cpu")
  exports = [("onnxruntime", lambda p: onnx_export.export(model, labels, p), ".onnx"),
             ("onnxruntime_2d", lambda p: onnx_export.export(model, labels, p, policy=frame_ops),
              ".onnx")]
  representative = random_representative((frames, size, size, 3), calibration_clips)
  exports += [("litert" if q == "none" else f"litert_{q}",
               lambda p, q=q: litert_export.export(
                   model, labels, p, quantize=q,
                   representative=representative if q == "int8" else None), ".tflite")
              for q in ["none"] + list(quantize)]
  for name, export, suffix in exports:
    path = os.path.join(scratch, name + suffix)
    start = time.perf_counter()
    export(path)
    export_seconds[name] = time.perf_counter() - start
    fns[name] = runtimes.load(path).logits
  return fns, export_seconds


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--frames", type=int, nargs="+", default=[16])
  parser.add_argument("--batch", type=int, nargs="+", default=[1])
  parser.add_argument("--size", type=int, default=224)
  parser.add_argument("--quantize", nargs="*", default=[],
                      choices=[q for q in litert_export.QUANTIZE_CHOICES if q != "none"])
  parser.add_argument("--calibration_clips", type=int, default=4,
                      help="Random clips calibrating --quantize int8 (timing only).")
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--output", default=None, help="Also append the JSON lines here.")
  args = parser.parse_args()

  sink = open(args.output, "a", encoding="utf-8") if args.output else None

  def emit(record):
    line = json.dumps(record)
    print(line, flush=True)
    if sink:
      sink.write(line + "\n")

  import onnxruntime  # pylint: disable=g-import-not-at-top
  import ai_edge_litert  # pylint: disable=g-import-not-at-top
  emit({"cpu": cpu_model(), "cores": os.cpu_count(), "tensorflow": tf.__version__,
        "onnxruntime": onnxruntime.__version__,
        "ai_edge_litert": getattr(ai_edge_litert, "__version__", "unknown"),
        "warmup": args.warmup, "repeats": args.repeats,
        "keras_formulation": frame_ops_policy.current_policy().mode,
        "load_average": [round(x, 2) for x in os.getloadavg()]})
  rng = np.random.default_rng(0)
  for frames in args.frames:
    with tempfile.TemporaryDirectory() as scratch:
      fns, export_seconds = build_runtimes(frames, args.size, args.quantize, scratch,
                                           args.calibration_clips)
      for batch in args.batch:
        clips = rng.integers(0, 256, (batch, frames, args.size, args.size, 3), dtype=np.uint8)
        reference = fns["keras"](clips)
        keras_seconds = None
        for name, fn in fns.items():
          seconds = median_seconds(fn, clips, args.warmup, args.repeats)
          keras_seconds = keras_seconds or seconds
          emit({"runtime": name, "frames": frames, "size": args.size, "batch": batch,
                "median_seconds": round(seconds, 4), "clips_per_second": round(batch / seconds, 3),
                "speedup_over_keras": round(keras_seconds / seconds, 3),
                "max_abs_logit_diff": float(np.abs(fn(clips) - reference).max()),
                "export_seconds": round(export_seconds.get(name, 0.0), 1),
                "load_average_1min": round(os.getloadavg()[0], 2)})
  if sink:
    sink.close()


if __name__ == "__main__":
  main()
