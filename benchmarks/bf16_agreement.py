"""Does mixed_bfloat16 inference predict what float32 does? One JSON object per line.

The goal: `mixed_bfloat16` inference with top-1 agreement >= 99% against float32. This
loads a trained `.keras` S3D-G classifier, rebuilds it under the `mixed_bfloat16` policy with
the same weights, and runs both over the same evaluation views (the model's own clip geometry,
one centre clip per video unless `--num_clips`): the share of views whose top-1 class agrees,
each model's top-1 against the labels, the largest logit difference, and clips/s of each
(measured alternately, the best of `--rounds`; on CPUs without fast bf16 kernels expect ~1x).

  python benchmarks/bf16_agreement.py --model=runs/synthetic/rgb/student.keras \
      --eval_files='runs/synthetic/data/records/test-*.tfrecord'
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from d3d_tf.data import datasets  # pylint: disable=g-import-not-at-top
from d3d_tf.models import s3dg_classifier  # pylint: disable=unused-import (registers classes)

POLICY = "mixed_bfloat16"


def emit(name, value, unit):
  print(json.dumps({"name": name, "value": round(float(value), 4), "unit": unit}), flush=True)


def with_policy(model: keras.Model, policy: str) -> keras.Model:
  """The same classifier (config and weights) under another dtype policy."""
  config = model.get_config()
  config["dtype"] = policy
  config["backbone"]["config"]["dtype"] = policy
  clone = model.__class__.from_config(config)
  clone.build(model.input_shape)
  clone.set_weights(model.get_weights())
  return clone


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True, help="A trained S3D-G classifier (.keras).")
  parser.add_argument("--eval_files", required=True, help="Glob of evaluation TFRecords.")
  parser.add_argument("--num_clips", type=int, default=1, help="Views per video.")
  parser.add_argument("--batch_size", type=int, default=8)
  parser.add_argument("--rounds", type=int, default=2, help="Timed passes per policy.")
  args = parser.parse_args()
  model = keras.models.load_model(args.model)
  geometry = getattr(model, "clip_geometry", None)
  if geometry is None:
    sys.exit(f"--model={args.model}: no clip geometry saved in it (train it with d3d_tf.train).")
  if not hasattr(model, "backbone"):
    sys.exit(f"--model={args.model}: not an S3D-G classifier (a VideoSwin student?).")
  bf16 = with_policy(model, POLICY)
  ds = datasets.eval_dataset(
      args.eval_files, num_clips=args.num_clips, num_frames=geometry.num_frames,
      stride=geometry.stride, crop_size=geometry.crop_size, batch_size=args.batch_size,
      with_rgb=geometry.channels == 3, with_flow=geometry.channels == 2)
  key = "rgb" if geometry.channels == 3 else "flow"
  batches = [(f[key], l) for f, l in ds]
  labels = np.concatenate([l.numpy() for _, l in batches])
  predict = {name: tf.function(lambda x, m=m: m(x, training=False))
             for name, m in (("float32", model), (POLICY, bf16))}
  logits, seconds = {}, {name: float("inf") for name in predict}
  for _ in range(args.rounds):
    for name, fn in predict.items():
      fn(batches[0][0])  # Trace outside the timing.
      start = time.perf_counter()
      out = [fn(x).numpy().astype(np.float32) for x, _ in batches]
      seconds[name] = min(seconds[name], time.perf_counter() - start)
      logits[name] = np.concatenate(out)
  top = {name: v.argmax(-1) for name, v in logits.items()}
  emit("views", len(labels), "count")
  emit("top1_agreement", np.mean(top["float32"] == top[POLICY]), "fraction")
  for name in predict:
    emit(f"top1/{name}", np.mean(top[name] == labels), "fraction")
    emit(f"clips_per_second/{name}", len(labels) / seconds[name], "clips/s")
  emit("max_abs_logit_difference", np.abs(logits["float32"] - logits[POLICY]).max(), "logit")
  emit(f"speedup/{POLICY}", seconds["float32"] / seconds[POLICY], "ratio")


if __name__ == "__main__":
  main()
