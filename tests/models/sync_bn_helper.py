"""Run by test_sync_batch_norm.py in a subprocess: one training step of a tiny S3D-G on one
replica and under MirroredStrategy on 2 logical CPUs, with and without synchronized batch norm.

Splitting the CPU into logical devices must happen before TensorFlow initializes its devices,
hence a separate process. Prints one JSON line: per run, the largest difference of its weights
and of its BN moving statistics from the one-replica run with the fused (unsynchronized) BN.
"""

import json

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from d3d_tf.distill import D3DDistiller  # noqa: E402
from d3d_tf.models import S3DGBackbone, S3DGClassifier  # noqa: E402

NUM_CLASSES = 4
GLOBAL_BATCH = 8


def build(sync):
  keras.utils.set_random_seed(0)
  # A fast-moving average (momentum 0.5), so one step moves the statistics visibly.
  backbone = S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3b", bn_momentum=0.5,
                          sync_batch_norm=sync)
  # No dropout: each replica would draw its own masks.
  return S3DGClassifier(backbone, NUM_CLASSES, dropout_keep_prob=1.0)


def data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(GLOBAL_BATCH, 8, 32, 32, 3)).astype("float32")
  # The replicas' halves have other statistics (shifted and scaled), so per-replica batch norm
  # sees other moments than the global batch's.
  x[: GLOBAL_BATCH // 2] = 0.5 * x[: GLOBAL_BATCH // 2] + 1.0
  y = rng.integers(0, NUM_CLASSES, size=GLOBAL_BATCH).astype("int32")
  return tf.data.Dataset.from_tensor_slices(({"rgb": x}, y)).batch(GLOBAL_BATCH)


def step(strategy, sync, initial):
  """The student's weights, BN moving statistics (replica 0's copy) after one SGD step, the
  replica count and the largest difference between the replicas' copies of the statistics."""
  with strategy.scope():
    student = build(sync)
    student.set_weights(initial)
    distiller = D3DDistiller(student, None)
    distiller.compile(optimizer=keras.optimizers.SGD(1.0))
  distiller.fit(data(), epochs=1, verbose=0)
  weights = [np.asarray(w) for w in student.trainable_weights]
  moving = [w for w in student.non_trainable_weights if "moving_" in w.path]
  statistics = [np.asarray(w) for w in moving]
  spread = max(
      float(np.abs(np.asarray(copy) - value).max())
      for w, value in zip(moving, statistics)
      for copy in strategy.experimental_local_results(w.value))
  return weights, statistics, strategy.num_replicas_in_sync, spread


def max_diff(a, b):
  return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def main():
  initial = build(False).get_weights()
  # One MirroredStrategy for both runs: two in one process would number their collective ops
  # alike, and the second's would meet the first's.
  mirrored = tf.distribute.MirroredStrategy(
      [d.name for d in tf.config.list_logical_devices("CPU")])
  reference = step(tf.distribute.get_strategy(), False, initial)
  runs = {
      "one_sync": step(tf.distribute.get_strategy(), True, initial),
      "two_sync": step(mirrored, True, initial),
      "two_plain": step(mirrored, False, initial),
  }
  start = build(False)
  start.set_weights(initial)
  out = {
      "replicas": {name: run[2] for name, run in runs.items()},
      "statistics": len(reference[1]),
      "weight_change": max_diff(reference[0], [np.asarray(w) for w in start.trainable_weights]),
      "statistics_change": max_diff(
          reference[1], [np.asarray(w) for w in start.non_trainable_weights
                         if "moving_" in w.path]),
  }
  for name, run in runs.items():
    out[name] = {"weights": max_diff(reference[0], run[0]),
                 "statistics": max_diff(reference[1], run[1]), "replica_spread": run[3]}
  print(json.dumps(out))


if __name__ == "__main__":
  main()
