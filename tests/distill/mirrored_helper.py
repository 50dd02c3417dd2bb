"""Run by test_distiller.py in a subprocess: 1 replica vs MirroredStrategy on 2 logical CPUs.

Splitting the CPU into logical devices must happen before TensorFlow initializes its devices,
hence a separate process. Prints one JSON line with both runs' losses, final weights and
evaluate results.
"""

import json
import sys

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from d3d_tf.distill import D3DDistiller  # noqa: E402

NUM_CLASSES = 5
GLOBAL_BATCH = 8
STEPS = 3
# --unlabelled: about a third of the labels are -1 (unlabelled; test_unlabelled.py).
UNLABELLED = "--unlabelled" in sys.argv[1:]


def tiny(channels, seed, name, l2=0.0):
  keras.utils.set_random_seed(seed)
  reg = keras.regularizers.L2(l2) if l2 else None
  inputs = keras.Input((4, 8, 8, channels))
  h = keras.layers.Conv3D(4, 3, padding="same", activation="relu", kernel_regularizer=reg)(inputs)
  h = keras.layers.GlobalAveragePooling3D()(h)
  return keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, kernel_regularizer=reg)(h), name=name)


def data(n=GLOBAL_BATCH * STEPS, batch_size=GLOBAL_BATCH, keys=("rgb", "flow")):
  rng = np.random.default_rng(0)
  x = {
    "rgb": rng.normal(size=(n, 4, 8, 8, 3)).astype("float32"),
    "flow": rng.normal(size=(n, 4, 8, 8, 2)).astype("float32"),
  }
  y = rng.integers(0, NUM_CLASSES, size=n).astype("int32")
  if UNLABELLED:
    y[rng.uniform(size=n) < 0.35] = -1
  x = {k: v for k, v in x.items() if k in keys}
  return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def run(strategy, student_w, teacher_w):
  with strategy.scope():
    student = tiny(3, 0, "student", l2=1e-2)
    teacher = tiny(2, 1, "teacher")
    student.set_weights(student_w)
    teacher.set_weights(teacher_w)
    distiller = D3DDistiller(student, teacher, label_weight=0.5, distill_weight=2.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9), metrics=["accuracy"])
  losses = []
  cb = keras.callbacks.LambdaCallback(
    on_train_batch_end=lambda b, logs: losses.append(float(logs["loss"]))
  )
  distiller.fit(data(), epochs=1, verbose=0, callbacks=[cb])
  # 11 clips in batches of 4: the last batch splits 2 + 1 over two replicas, so the mean of
  # the replicas' running means is not the epoch mean that evaluate must return.
  evals = {
    name: distiller.evaluate(data(11, 4, keys), verbose=0, return_dict=True)
    for name, keys in (("full", ("rgb", "flow")), ("rgb", ("rgb",)))
  }
  weights = [w.tolist() for w in student.get_weights()]
  return losses, weights, strategy.num_replicas_in_sync, evals


def main():
  student_w = tiny(3, 0, "student").get_weights()
  teacher_w = tiny(2, 1, "teacher").get_weights()
  one = run(tf.distribute.get_strategy(), student_w, teacher_w)
  devices = [d.name for d in tf.config.list_logical_devices("CPU")]
  two = run(tf.distribute.MirroredStrategy(devices), student_w, teacher_w)
  json.dump(
    {
      "replicas": [one[2], two[2]],
      "unlabelled": int(sum((y.numpy() == -1).sum() for _, y in data())),
      "losses": [one[0], two[0]],
      "evals": [one[3], two[3]],
      "max_weight_diff": max(
        float(np.abs(np.array(a) - np.array(b)).max()) for a, b in zip(one[1], two[1], strict=True)
      ),
      "max_weight_change": max(
        float(np.abs(np.array(a) - np.array(b)).max())
        for a, b in zip(one[1], student_w, strict=True)
      ),
    },
    sys.stdout,
  )
  print()


if __name__ == "__main__":
  main()
