"""S3D-G and S3D inference and training speed against this machine's matmul ceiling (JSON lines).

For each model, clip shape, dtype policy, XLA setting and op formulation: clips/s for inference
(`predict_on_batch`) and training (`train_on_batch`, SGD), the FLOPs per clip counted by TF's
graph profiler and checked against a hand count of the convolutions, the GFLOP/s achieved
(training counted as 3x the forward FLOPs) and its share of a float32 (bfloat16 for bf16 rows)
matmul measured in the same process just before. `--ops=tf3d` builds the same model on TF's
3D convs and pools and Keras' batch norm (what d3d_tf ran before models/frame_ops.py), for the
before/after. With torch and torchvision installed (never dependencies), `--torchvision` times
torchvision's `s3d` at the same shapes (in its own process: torchvision_speed.py). Machines are
noisy: compare rows of one run; each row carries the load average.

  python benchmarks/model_speed.py                       # 16x224x224, batch 4, fp32 and bf16
  python benchmarks/model_speed.py --shapes=16x112x112 --ops=frame,tf3d --dtypes=float32
  python benchmarks/model_speed.py --growth               # T = 16, 32, 64 and batch 1, 4, 8
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_cost import graph_flops  # noqa: E402

from d3d_tf.models import S3DGBackbone, S3DGClassifier, frame_ops  # noqa: E402
from d3d_tf.models.fused_batch_norm import FusedBatchNormalization  # noqa: E402
from d3d_tf.models.s3dg_layers import InceptionBlock3D, STConv3D  # noqa: E402

CLASSES = 400


def matmul_gflops(dtype, size=4096, repeats=5):
  """Best GFLOP/s of a size x size matmul: the ceiling the model's rate is compared with."""
  a = tf.cast(tf.random.normal((size, size)), dtype)
  fn = tf.function(lambda m: tf.matmul(m, m))
  fn(a).numpy()
  best = min(_timed(lambda: fn(a).numpy()) for _ in range(repeats))
  return 2 * size ** 3 / best / 1e9


def _timed(fn):
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def _unit_macs(unit, in_channels, thw):
  """Multiply-adds of one STConv3D producing `thw` (T*H*W) outputs (stride-1 separable)."""
  kt, kh, kw = unit.kernel_size
  if unit.is_separable:
    return thw * (kh * kw * in_channels * unit.filters + kt * unit.filters * unit.filters)
  return thw * kt * kh * kw * in_channels * unit.filters


def hand_gmacs(backbone, shape):
  """The convolutions' multiply-adds per clip, from the layer table and endpoint shapes."""
  endpoints = backbone(tf.zeros((1,) + shape + (backbone.input_channels,)))
  channels, total = backbone.input_channels, 0
  for name, value in endpoints.items():
    layer = backbone.get_layer(name)
    thw = int(np.prod(value.shape[1:4]))
    if isinstance(layer, STConv3D):
      total += _unit_macs(layer, channels, thw)
    elif isinstance(layer, InceptionBlock3D):
      for branch in layer._branches():  # pylint: disable=protected-access
        branch_in = channels
        for unit in branch:
          total += _unit_macs(unit, branch_in, thw)
          branch_in = unit.filters
    channels = value.shape[-1]
  return total / 1e9


@contextlib.contextmanager
def tf_3d_ops():
  """Builds and traces inside on TF's 3D ops and Keras' batch norm (benchmark-only patch)."""
  saved = frame_ops._use_frame_ops, FusedBatchNormalization.call  # pylint: disable=protected-access
  frame_ops._use_frame_ops = lambda: False  # pylint: disable=protected-access
  FusedBatchNormalization.call = keras.layers.BatchNormalization.call
  try:
    yield
  finally:
    # pylint: disable-next=protected-access
    frame_ops._use_frame_ops, FusedBatchNormalization.call = saved


def time_keras(name, shape, batch, dtype, jit, ops, repeats):
  """(inference s/batch, training s/batch, counted GFLOP/clip, hand GMAC/clip) for one row."""
  keras.utils.set_random_seed(0)
  with tf_3d_ops() if ops == "tf3d" else contextlib.nullcontext():
    backbone = S3DGBackbone(gating=name == "s3dg", dtype=dtype)
    model = S3DGClassifier(backbone, CLASSES, dtype=dtype)
    model.compile(keras.optimizers.SGD(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
    x = tf.random.stateless_uniform((batch,) + shape + (3,), (1, 2), -1.0, 1.0)
    y = np.arange(batch) % CLASSES
    model.predict_on_batch(x)  # Traces (and compiles) inside the patch.
    model.train_on_batch(x, y)
  infer = min(_timed(lambda: model.predict_on_batch(x)) for _ in range(repeats))
  train = min(_timed(lambda: model.train_on_batch(x, y)) for _ in range(repeats))
  counted = graph_flops(model, (1,) + shape + (3,)) / 1e9 if dtype == "float32" else None
  return infer, train, counted, hand_gmacs(backbone, shape)


def emit(row):
  row["load_average_1min"] = round(os.getloadavg()[0], 2)
  print(json.dumps(row), flush=True)


def _shape(text):
  t, h, w = (int(v) for v in text.lower().split("x"))
  return (t, h, w)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--shapes", default="16x224x224", help="Comma-separated TxHxW.")
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--models", default="s3dg", help="s3dg, s3d (no gating), comma-separated.")
  parser.add_argument("--dtypes", default="float32,mixed_bfloat16")
  parser.add_argument("--jit", default="off", help="off, on, or off,on.")
  parser.add_argument("--ops", default="frame", help="frame (d3d_tf's), tf3d (TF's 3D ops).")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--matmul_size", type=int, default=4096, help="Side of the ceiling matmul.")
  parser.add_argument("--growth", action="store_true",
                      help="Also S3D-G fp32 inference at T=16,32,64 (112 px) and batch 1,4,8.")
  parser.add_argument("--torchvision", action="store_true", help="Also torchvision's s3d.")
  args = parser.parse_args()
  ceilings = {}
  for dtype in args.dtypes.split(","):
    matmul_dtype = "bfloat16" if "bfloat16" in dtype else "float32"
    if matmul_dtype not in ceilings:
      ceilings[matmul_dtype] = matmul_gflops(matmul_dtype, args.matmul_size)
      emit({"name": f"matmul_{args.matmul_size}_{matmul_dtype}",
            "gflops": round(ceilings[matmul_dtype], 1)})
  runs = [(m, _shape(s), args.batch, d, j == "on", o)
          for m in args.models.split(",") for s in args.shapes.split(",")
          for d in args.dtypes.split(",") for j in args.jit.split(",") for o in args.ops.split(",")]
  if args.growth:
    runs += [("s3dg", (t, 112, 112), args.batch, "float32", False, "frame") for t in (32, 64)]
    runs += [("s3dg", (16, 112, 112), b, "float32", False, "frame") for b in (1, 8)]
  counted_cache = {}
  for name, shape, batch, dtype, jit, ops in runs:
    infer, train, counted, hand = time_keras(name, shape, batch, dtype, jit, ops, args.repeats)
    if counted:
      counted_cache[(name, shape)] = counted
    counted = counted_cache.get((name, shape))  # bf16 rows take their fp32 row's count.
    ceiling = ceilings["bfloat16" if "bfloat16" in dtype else "float32"]
    flops = counted * 1e9 if counted else 2 * hand * 1e9
    for mode, seconds, factor in (("inference", infer, 1), ("training", train, 3)):
      achieved = factor * flops * batch / seconds / 1e9
      emit({"name": f"{name}_{mode}", "shape": "x".join(map(str, shape)), "batch": batch,
            "dtype": dtype, "jit": jit, "ops": ops, "clips_per_s": round(batch / seconds, 3),
            "gflop_per_clip_counted": counted and round(counted, 2),
            "gmac_per_clip_hand_convs": round(hand, 2), "achieved_gflops": round(achieved, 1),
            "share_of_matmul": round(achieved / ceiling, 3)})
  if args.torchvision:  # Its own process: torch beside TF crashed here.
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchvision_speed.py")
    subprocess.run([sys.executable, script, f"--shapes={args.shapes}", f"--batch={args.batch}",
                    f"--repeats={args.repeats}"], check=True)


if __name__ == "__main__":
  main()
