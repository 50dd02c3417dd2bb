r"""Which of S3D-G's op types gain from bfloat16 on this CPU, and which fall back or slow down.

For each op type S3D-G computes (2D and 3D convs, the separable convs' temporal part, batch
norm as the model runs it, self-gating, max pools 2D and 3D, the head's mean; also the 2D conv
with float32 gradients under bfloat16), times its forward pass, and forward + backward, in
float32 and in bfloat16 on a mid-network S3D-G map (batch 4, 8x28x28x192 unless said),
alternating the two dtypes, best of `--repeats`. Prints one JSON line per op and pass with both
times and their ratio (bf16 speed-up; below 1 is a slowdown), the CPU model first.

Usage: python benchmarks/bf16_ops.py [--repeats 10]
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from d3d_tf.common import machine  # noqa: E402
from d3d_tf.models import frame_ops  # noqa: E402


def _ops(channels):
  """name -> (input shape, fn(x, dtype) building the op on x)."""
  shape5 = (4, 8, 28, 28, channels)
  # Kernels are variables (a constant kernel lets grappler fold a gradient away), one per dtype.
  kernels = {}

  def kernel(shape, dt):
    key = (shape, dt.name)
    if key not in kernels:
      kernels[key] = tf.Variable(tf.random.stateless_normal(shape, (1, 2), dtype=dt))
    return kernels[key]
  k2 = lambda dt: kernel((3, 3, channels, channels), dt)  # noqa: E731
  k3 = lambda dt: kernel((3, 3, 3, channels, channels), dt)  # noqa: E731
  kt = lambda dt: kernel((3, 1, channels, channels), dt)  # noqa: E731
  return {
      "conv2d_3x3 (frames)": (shape5, lambda x, dt: tf.nn.conv2d(
          tf.reshape(x, (-1, 28, 28, channels)), k2(dt), 1, "SAME")),
      # The same bfloat16 conv with its gradients computed in float32 (what d3d_tf's frame ops
      # do where the bfloat16 backprop kernels are slow; measured per machine).
      "conv2d_3x3 (frames), float32 gradients": (shape5, lambda x, dt: frame_ops.conv2d(
          tf.reshape(x, (-1, 28, 28, channels)), k2(dt), (1, 1), "SAME", "float32")),
      "conv3d_3x3x3": (shape5, lambda x, dt: tf.nn.conv3d(x, k3(dt), (1,) * 5, "SAME")),
      "conv_time_3x1 (as 2D)": (shape5, lambda x, dt: tf.nn.conv2d(
          tf.reshape(x, (4, 8, 28 * 28, channels)), kt(dt), 1, "SAME")),
      "batch_norm (fused, training)": (shape5, lambda x, dt: tf.compat.v1.nn.fused_batch_norm(
          tf.reshape(x, (-1, 28, 28, channels)), tf.ones([channels], tf.float32),
          tf.zeros([channels], tf.float32), is_training=True)[0]),
      "self_gating": (shape5, lambda x, dt: x * tf.sigmoid(
          tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True))),
      "max_pool2d_3x3 (frames)": (shape5, lambda x, dt: tf.nn.max_pool2d(
          tf.reshape(x, (-1, 28, 28, channels)), 3, 1, "SAME")),
      "max_pool3d_3x3x3": (shape5, lambda x, dt: tf.nn.max_pool3d(x, 3, 1, "SAME")),
      "relu": (shape5, lambda x, dt: tf.nn.relu(x)),
      "head_mean": (shape5, lambda x, dt: tf.reduce_mean(x, axis=[1, 2, 3])),
  }


def _time(fn, repeats):
  fn()  # Trace and warm up.
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - start)
  return best


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--channels", type=int, default=192)
  args = parser.parse_args()
  print(json.dumps({"cpu": machine.cpu_model(), "cores": machine.cpu_count(),
                    "tensorflow": tf.__version__}), flush=True)
  for name, (shape, build) in _ops(args.channels).items():
    row = {"op": name}
    for pass_name in ("forward", "forward_backward"):
      times = {}
      for dtype in (tf.float32, tf.bfloat16):
        x0 = tf.cast(tf.random.stateless_normal(shape, (0, 1)), dtype)
        backward = pass_name == "forward_backward"

        # The clip is an argument, not a captured constant: a constant would let grappler
        # fold the op away, and a watched constant gives no gradient.
        @tf.function
        def step(x, dtype=dtype, backward=backward):
          if not backward:
            return tf.reduce_sum(tf.cast(build(x, dtype), tf.float32))
          with tf.GradientTape() as tape:
            tape.watch(x)
            # A square: the gradient needs the forward values (a sum's would not).
            loss = tf.reduce_sum(tf.square(tf.cast(build(x, dtype), tf.float32)))
          return tape.gradient(loss, x)

        times[dtype.name] = _time(lambda: step(x0).numpy(), args.repeats)
      row[pass_name] = {"float32_ms": round(1e3 * times["float32"], 3),
                        "bfloat16_ms": round(1e3 * times["bfloat16"], 3),
                        "bf16_speedup": round(times["float32"] / times["bfloat16"], 2)}
    print(json.dumps(row), flush=True)
  print(json.dumps({"load_average_1min": os.getloadavg()[0]}), flush=True)


if __name__ == "__main__":
  main()
