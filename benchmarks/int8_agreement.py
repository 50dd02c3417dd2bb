"""How much int8 LiteRT changes a trained classifier: top-1 agreement and accuracy on a split.

The file a phone runs is `d3d_tf.export --format=litert --quantize=...`; this script exports a
`.keras` classifier as float32, dynamic-range int8 (int8 weights) and full int8 LiteRT files
(the latter calibrated on `--representative_files`, e.g. the val split, never the split it is
scored on), then classifies `--eval_files` with each, and with the Keras model, under
`d3d_tf.evaluate`'s protocol (`--num_clips` views per video, logits averaged per video: the
quickstart's table) in one pass over the data.

One JSON object per line: the machine and setup first, then per model its top-1 and top-5 (%),
the top-1 change from float32 LiteRT in points, and the share of videos whose top-1 class is
the float32 file's (`top1_agreement_with_float32`; the goal for int8 is >= 98%) and the Keras
model's.

Usage:
  python benchmarks/int8_agreement.py --model=runs/synthetic/d3d/student.keras \
    --eval_files='runs/synthetic/data/records/test-*.tfrecord' \
    --representative_files='runs/synthetic/data/records/val-*.tfrecord' \
    --output_dir=/tmp/int8_agreement [--num_clips 2] [--output FILE]
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from d3d_tf.data import datasets  # noqa: E402
from d3d_tf.evaluation import ensemble  # noqa: E402
from d3d_tf.evaluation import metrics  # noqa: E402
from d3d_tf.models import clip_geometry as geometry_lib  # noqa: E402
from d3d_tf.models import model_files  # noqa: E402
from d3d_tf.serving import litert_export  # noqa: E402

QUANTIZATIONS = ("none", "dynamic_int8", "int8")


def cpu_model() -> str:
  """The CPU's model name from /proc/cpuinfo ("unknown" elsewhere)."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return "unknown"


def export_all(model_path, representative_files, output_dir, max_clips):
  """{quantize: path} of the LiteRT files, and the seconds each export took."""
  paths, seconds = {}, {}
  for quantize in QUANTIZATIONS:
    path = os.path.join(output_dir, f"model_{quantize}.tflite")
    start = time.perf_counter()
    litert_export.export_from_files(
        model_path, None, path, quantize=quantize, overwrite=True,
        representative_files=representative_files if quantize == "int8" else None,
        max_representative_clips=max_clips)
    seconds[quantize] = time.perf_counter() - start
    paths[quantize] = path
  return paths, seconds


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True, help="A trained .keras classifier.")
  parser.add_argument("--eval_files", required=True, help="Records scored (the test split).")
  parser.add_argument("--representative_files", required=True,
                      help="Records calibrating full int8 (the val split).")
  parser.add_argument("--output_dir", required=True, help="Where the .tflite files go.")
  parser.add_argument("--num_clips", type=int, default=2)
  parser.add_argument("--max_representative_clips", type=int, default=300)
  parser.add_argument("--output", default=None, help="Also append the JSON lines here.")
  args = parser.parse_args()
  os.makedirs(args.output_dir, exist_ok=True)
  sink = open(args.output, "a", encoding="utf-8") if args.output else None

  def emit(record):
    line = json.dumps(record)
    print(line, flush=True)
    if sink:
      sink.write(line + "\n")

  paths, export_seconds = export_all(args.model, args.representative_files, args.output_dir,
                                     args.max_representative_clips)
  members = ensemble.load_members([args.model] + [paths[q] for q in QUANTIZATIONS])
  stored = [(m.path, geometry_lib.geometry_of(m.model)) for m in members]
  geometry, _ = model_files.resolve_for_models(
      stored, dict.fromkeys(("num_frames", "stride", "crop_size", "crop_fraction")))
  dataset = datasets.eval_dataset(args.eval_files, num_clips=args.num_clips, with_rgb=True,
                                  with_flow=False, **geometry)
  start = time.perf_counter()
  out = ensemble.run_views(members, dataset)
  emit({"cpu": cpu_model(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "model": args.model, "eval_files": args.eval_files,
        "representative_files": args.representative_files,
        "max_representative_clips": args.max_representative_clips,
        "num_clips": args.num_clips, "num_videos": int(len(out["labels"])),
        "seconds": round(time.perf_counter() - start, 1)})
  predictions = out["logits"].argmax(-1)  # [M, N]
  names = ["keras"] + [f"litert_{q}" if q != "none" else "litert_float32"
                       for q in QUANTIZATIONS]
  float32 = names.index("litert_float32")
  reference = metrics.summary(ensemble.softmax(out["logits"][float32]), out["labels"])
  for i, (name, member) in enumerate(zip(names, members)):
    summary = metrics.summary(ensemble.softmax(out["logits"][i]), out["labels"])
    quantize = QUANTIZATIONS[i - 1] if i else None
    emit({"runtime": name, "file": member.path,
          "file_bytes": os.path.getsize(member.path),
          "top1_percent": round(100 * summary["top1"], 2),
          "top5_percent": round(100 * summary["top5"], 2),
          "top1_change_from_float32_points": round(100 * (summary["top1"] - reference["top1"]),
                                                   2),
          "top1_agreement_with_float32": round(float(np.mean(predictions[i] ==
                                                             predictions[float32])), 4),
          "top1_agreement_with_keras": round(float(np.mean(predictions[i] == predictions[0])), 4),
          "max_abs_logit_diff_from_float32": float(np.abs(out["logits"][i] -
                                                          out["logits"][float32]).max()),
          "clips_per_second": round(member.clips_per_second, 1),
          "export_seconds": round(export_seconds[quantize], 1) if quantize else None})
  if sink:
    sink.close()


if __name__ == "__main__":
  main()
