"""S3D-G and S3D inference and training speed against this machine's matmul ceiling (JSON lines).

For each model, clip shape, dtype policy, XLA setting and op formulation: clips/s for inference
(`predict_on_batch`) and training (`train_on_batch`, SGD), the FLOPs per clip counted by TF's
graph profiler and checked against a hand count of the convolutions, the GFLOP/s achieved
(training counted as 3x the forward FLOPs) and its share of a float32 (bfloat16 for bf16 rows)
matmul measured in the same process just before. Every row names the CPU model (/proc/cpuinfo).

Formulations (`--ops`, side by side): `chosen` (d3d_tf's default: per layer type, the faster of
2D-over-frames and TF's 3D ops as timed by models/frame_ops_policy.py; its row lists the choices
and the seconds the timing cost when not cached; under bfloat16 also the measured dtype of the
2D convs' gradients), `2d` (2D ops over frames everywhere, float32 gradients of its bfloat16
convs: the formulation forced), `3d`
(TF's 3D convs and pools everywhere), `tf3d` (3D ops and Keras' batch norm: d3d_tf before
models/frame_ops.py) and `keras` (a straightforward plain-Keras Conv3D S3D-G,
plain_keras_s3dg.py, not ours). A `summary` row per shape and dtype gives the chosen
formulation's speed over the best of the others. With torch and torchvision installed (never
dependencies), `--torchvision` times torchvision's `s3d` at the same shapes (in its own process:
torchvision_speed.py). Machines are noisy: compare rows of one run; rows carry the load average.

  python benchmarks/model_speed.py                       # 16x224x224, batch 4, fp32 and bf16
  python benchmarks/model_speed.py --shapes=16x112x112 --dtypes=float32 --models=s3dg
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

from plain_keras_s3dg import plain_s3dg  # noqa: E402

from d3d_tf.models import S3DGBackbone, S3DGClassifier  # noqa: E402
from d3d_tf.models import frame_ops_policy  # noqa: E402
from d3d_tf.models.fused_batch_norm import FusedBatchNormalization  # noqa: E402
from d3d_tf.models.s3dg_layers import InceptionBlock3D, STConv3D  # noqa: E402

CLASSES = 400
OPS = ("chosen", "2d", "3d", "tf3d", "keras")


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


class TimedPolicy(frame_ops_policy.FormulationPolicy):
  """The process's auto policy (same cache file), adding up the seconds its timings take."""
  timing_seconds = 0.0

  def _measure(self, op):
    start = time.perf_counter()
    try:
      return super()._measure(op)
    finally:
      self.timing_seconds += time.perf_counter() - start

  def conv_gradient_dtype(self):
    start = time.perf_counter()
    try:
      return super().conv_gradient_dtype()
    finally:
      self.timing_seconds += time.perf_counter() - start


@contextlib.contextmanager
def formulation(ops, chosen_policy):
  """Builds and traces inside on `ops`' formulation (and Keras' batch norm for tf3d)."""
  policy = chosen_policy if ops == "chosen" else frame_ops_policy.FormulationPolicy(
      mode="2d" if ops == "2d" else "3d")
  saved = FusedBatchNormalization.call
  if ops == "tf3d":
    FusedBatchNormalization.call = keras.layers.BatchNormalization.call  # Benchmark-only patch.
  try:
    with frame_ops_policy.use_policy(policy):
      yield
  finally:
    FusedBatchNormalization.call = saved


def time_keras(name, shape, batch, dtype, jit, ops, repeats, chosen_policy):
  """(inference s/batch, training s/batch, counted GFLOP/clip, hand GMAC/clip) for one row."""
  keras.utils.set_random_seed(0)
  with formulation(ops, chosen_policy):
    if ops == "keras":
      model = plain_s3dg(CLASSES, dtype=dtype)
      backbone = S3DGBackbone(gating=name == "s3dg")  # For the hand count only.
    else:
      backbone = S3DGBackbone(gating=name == "s3dg", dtype=dtype)
      model = S3DGClassifier(backbone, CLASSES, dtype=dtype)
    model.compile(keras.optimizers.SGD(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
    x = tf.random.stateless_uniform((batch,) + shape + (3,), (1, 2), -1.0, 1.0)
    y = np.arange(batch) % CLASSES
    model.predict_on_batch(x)  # Traces (and compiles) inside the formulation.
    model.train_on_batch(x, y)
    counted = graph_flops(model, (1,) + shape + (3,)) / 1e9 if dtype == "float32" else None
    hand = hand_gmacs(backbone, shape)
  infer = min(_timed(lambda: model.predict_on_batch(x)) for _ in range(repeats))
  train = min(_timed(lambda: model.train_on_batch(x, y)) for _ in range(repeats))
  return infer, train, counted, hand


def emit(row):
  row["cpu"] = frame_ops_policy.cpu_model()
  row["tensorflow"] = tf.__version__
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
  parser.add_argument("--ops", default=",".join(OPS),
                      help="Comma-separated formulations: " + ", ".join(OPS) + ".")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--matmul_size", type=int, default=4096, help="Side of the ceiling matmul.")
  parser.add_argument("--growth", action="store_true",
                      help="Also S3D-G fp32 inference at T=16,32,64 (112 px) and batch 1,4,8.")
  parser.add_argument("--torchvision", action="store_true", help="Also torchvision's s3d.")
  args = parser.parse_args()
  unknown = set(args.ops.split(",")) - set(OPS)
  if unknown:
    parser.error(f"--ops: unknown {', '.join(sorted(unknown))}; choose from {', '.join(OPS)}.")
  base = frame_ops_policy.policy_from_env(mode="auto", device="cpu")
  chosen_policy = TimedPolicy(mode="auto", device="cpu", cache_file=base.cache_file)
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
    runs += [("s3dg", (t, 112, 112), args.batch, "float32", False, "chosen") for t in (32, 64)]
    runs += [("s3dg", (16, 112, 112), b, "float32", False, "chosen") for b in (1, 8)]
  counted_cache, rates = {}, {}
  for name, shape, batch, dtype, jit, ops in runs:
    infer, train, counted, hand = time_keras(name, shape, batch, dtype, jit, ops, args.repeats,
                                             chosen_policy)
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
      rates.setdefault((name, shape, batch, dtype, jit, mode), {})[ops] = batch / seconds
  for (name, shape, batch, dtype, jit, mode), by_ops in rates.items():
    others = {k: v for k, v in by_ops.items() if k != "chosen"}
    if "chosen" in by_ops and others:
      best = max(others, key=others.get)
      emit({"name": f"{name}_{mode}_summary", "shape": "x".join(map(str, shape)), "batch": batch,
            "dtype": dtype, "jit": jit, "best_other": best,
            "chosen_over_best_other": round(by_ops["chosen"] / others[best], 3)})
  if "chosen" in args.ops.split(","):
    emit({"name": "chosen_formulations", "cache_file": chosen_policy.cache_file,
          "timing_seconds_this_run": round(chosen_policy.timing_seconds, 2),
          "choices": {key: {m: entry[m] for m in ("inference", "training") if m in entry}
                      for key, entry in sorted(chosen_policy.choices().items())}})
  if args.torchvision:  # Its own process: torch beside TF crashed here.
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchvision_speed.py")
    subprocess.run([sys.executable, script, f"--shapes={args.shapes}", f"--batch={args.batch}",
                    f"--repeats={args.repeats}"], check=True)


if __name__ == "__main__":
  main()
