"""Trainable parameters and GFLOPs of S3D-G and S3D as built, per 64x224x224 clip.

FLOPs are counted by TensorFlow's graph profiler on the frozen inference graph, where a
multiply-add is 2 FLOPs; video papers of the S3D-G era (I3D's "108 GFLOPs") count multiply-adds,
so the GMACs line (FLOPs / 2) is the one to compare with them. Prints JSON lines.

  python benchmarks/model_cost.py [--frames 64 --size 224 --classes 400]
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework import convert_to_constants  # noqa: E402

from d3d_tf.models import S3DGBackbone, S3DGClassifier  # noqa: E402


def graph_flops(model, shape):
  """FLOPs of one inference pass, from the profiler's float_ops on a constant-folded graph."""
  fn = tf.function(lambda x: model(x, training=False))
  concrete = fn.get_concrete_function(tf.TensorSpec(shape, tf.float32))
  frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  stats = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
  return stats.total_float_ops


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--frames", type=int, default=64)
  parser.add_argument("--size", type=int, default=224)
  parser.add_argument("--classes", type=int, default=400)
  args = parser.parse_args()
  shape = (1, args.frames, args.size, args.size)
  for name, channels, gating in (("s3dg_rgb", 3, True), ("s3dg_flow", 2, True),
                                 ("s3d_rgb", 3, False)):
    model = S3DGClassifier(S3DGBackbone(input_channels=channels, gating=gating), args.classes)
    params = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    print(json.dumps({"name": f"{name}_trainable_params", "value": params, "unit": "params"}))
    flops = graph_flops(model, shape + (channels,))
    clip = f"{args.frames}x{args.size}x{args.size}"
    print(json.dumps({"name": f"{name}_gflops_{clip}", "value": round(flops / 1e9, 2),
                      "unit": "GFLOPs"}))
    print(json.dumps({"name": f"{name}_gmacs_{clip}", "value": round(flops / 2e9, 2),
                      "unit": "GMACs"}), flush=True)


if __name__ == "__main__":
  main()
