"""Unlabelled examples (label -1): no label term, the distillation term as usual,
skipped by the accuracies, an error without a teacher, and the same under two replicas."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from d3d_tf.data import datasets
from d3d_tf.distill import UNLABELLED, D3DDistiller, label_cross_entropy, logit_mse

from test_distiller import HERE, REPO, batch, np_softmax, tiny  # pylint: disable=g-bad-import-order


def test_the_data_pipeline_and_the_trainer_agree_on_the_label():
  assert datasets.UNLABELLED == UNLABELLED == -1


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_of_an_unlabelled_example_is_zero_and_so_is_its_gradient(label_smoothing):
  logits = tf.constant([[2.0, -1.0, 0.5], [0.3, 0.2, -4.0], [1.0, 1.0, 1.0]])
  labels = tf.constant([1, UNLABELLED, 2])
  with tf.GradientTape() as tape:
    tape.watch(logits)
    ce = label_cross_entropy(labels, logits, label_smoothing)
    total = tf.reduce_sum(ce)
  grad = tape.gradient(total, logits).numpy()
  full = label_cross_entropy(tf.constant([1, 0, 2]), logits, label_smoothing).numpy()
  np.testing.assert_allclose(ce.numpy(), [full[0], 0.0, full[2]], rtol=1e-6)
  np.testing.assert_array_equal(grad[1], 0.0)
  assert np.all(np.isfinite(grad)) and np.abs(grad[[0, 2]]).min() > 0


def test_train_step_masks_the_label_term_keeps_distillation_and_skips_accuracy():
  student, teacher = tiny(3, 0, "student"), tiny(2, 1, "teacher")
  x, y = batch(4)
  y[[1, 3]] = UNLABELLED
  s = student.predict(x["rgb"], verbose=0).astype("float64")
  t = teacher.predict(x["flow"], verbose=0).astype("float64")
  known = y != UNLABELLED
  ce = np.where(known, -np.log(np_softmax(s)[np.arange(4), np.maximum(y, 0)]), 0.0)
  d = ((s - t) ** 2).mean(-1)
  distiller = D3DDistiller(student, teacher, label_weight=0.5, distill_weight=2.0)
  distiller.compile(optimizer=keras.optimizers.SGD(0.0), metrics=["accuracy"])
  logs = {k: v[0] for k, v in distiller.fit(x, y, batch_size=4, verbose=0).history.items()}
  # Divided by the global batch (4), unlabelled examples included.
  assert logs["loss"] == pytest.approx((0.5 * ce + 2.0 * d).sum() / 4, rel=1e-5)
  assert logs["distill_loss"] == pytest.approx(d.mean(), rel=1e-5)
  assert logs["label_loss"] == pytest.approx(ce[known].mean(), rel=1e-5)
  top1 = (s.argmax(-1) == y)[known].mean()
  assert logs["top1"] == pytest.approx(top1) and logs["accuracy"] == pytest.approx(top1)
  assert logs["teacher_top1"] == pytest.approx((t.argmax(-1) == y)[known].mean())


def test_unlabelled_examples_move_the_student_by_the_distillation_gradient_only():
  x, y = batch(4)
  y[:] = UNLABELLED

  def gradients(label_weight):
    student, teacher = tiny(3, 0, "student"), tiny(2, 1, "teacher")
    distiller = D3DDistiller(student, teacher, label_weight=label_weight)
    with tf.GradientTape() as tape:
      s = student(x["rgb"], training=True)
      total, _, _ = distiller._per_example_losses(y, s, teacher(x["flow"]))
      loss, _ = distiller._objective(total, None)
    with tf.GradientTape() as tape_d:
      s = student(x["rgb"], training=True)
      d = tf.reduce_sum(logit_mse(s, teacher(x["flow"]))) / 4
    return (tape.gradient(loss, student.trainable_variables),
            tape_d.gradient(d, student.trainable_variables))

  for label_weight in (1.0, 7.0):
    grads, distill_only = gradients(label_weight)
    for g, g_d in zip(grads, distill_only, strict=True):
      np.testing.assert_allclose(g.numpy(), g_d.numpy(), rtol=1e-5, atol=1e-7)


def test_an_unlabelled_example_without_a_teacher_is_an_error_naming_the_flag():
  x, y = batch(4)
  y[2] = UNLABELLED
  distiller = D3DDistiller(tiny(3, 0, "student"))
  distiller.compile(optimizer=keras.optimizers.SGD(0.1))
  with pytest.raises(tf.errors.InvalidArgumentError, match="--unlabelled_train_files needs "
                                                           "--stream=d3d"):
    distiller.fit(x["rgb"], y, batch_size=4, verbose=0)
  # Evaluating such clips needs no teacher: they are skipped.
  results = distiller.evaluate(x["rgb"], y, batch_size=4, verbose=0, return_dict=True)
  s = distiller.student.predict(x["rgb"], verbose=0)
  known = y != UNLABELLED
  assert results["top1"] == pytest.approx((s.argmax(-1) == y)[known].mean())


def test_mirrored_two_replicas_match_one_replica_with_unlabelled_examples():
  env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  proc = subprocess.run([sys.executable, os.path.join(HERE, "mirrored_helper.py"), "--unlabelled"],
                        capture_output=True, text=True, env=env, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  assert result["replicas"] == [1, 2] and result["unlabelled"] > 0
  np.testing.assert_allclose(result["losses"][0], result["losses"][1], rtol=1e-5)
  assert result["max_weight_change"] > 1e-2 and result["max_weight_diff"] < 1e-5
  one, two = result["evals"]
  for name in ("full", "rgb"):
    assert two[name] == pytest.approx(one[name], rel=1e-5)
    assert one[name]["accuracy"] == pytest.approx(one[name]["top1"])



