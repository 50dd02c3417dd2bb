"""D3DDistiller: loss arithmetic, frozen teacher, parity with plain training, replicas,
mixed precision, XLA, saving, and Keras' compile/evaluate contract (metrics, RGB-only eval)."""

import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from d3d_tf.distill import D3DDistiller

NUM_CLASSES = 5
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def tiny(channels=3, seed=0, name=None, num_classes=NUM_CLASSES, l2=0.0, bn_dropout=False):
  """Stand-in for S3D-G: [B,4,8,8,C] -> logits [B,num_classes]."""
  keras.utils.set_random_seed(seed)
  reg = keras.regularizers.L2(l2) if l2 else None
  inputs = keras.Input((4, 8, 8, channels))
  h = keras.layers.Conv3D(4, 3, padding="same", activation="relu", kernel_regularizer=reg)(inputs)
  if bn_dropout:
    h = keras.layers.BatchNormalization()(h)
  h = keras.layers.GlobalAveragePooling3D()(h)
  if bn_dropout:
    h = keras.layers.Dropout(0.5)(h)
  outputs = keras.layers.Dense(num_classes, kernel_regularizer=reg)(h)
  return keras.Model(inputs, outputs, name=name)


def batch(n=8, seed=0):
  rng = np.random.default_rng(seed)
  x = {
    "rgb": rng.normal(size=(n, 4, 8, 8, 3)).astype("float32"),
    "flow": rng.normal(size=(n, 4, 8, 8, 2)).astype("float32"),
  }
  return x, rng.integers(0, NUM_CLASSES, size=n).astype("int32")


def np_softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


@pytest.fixture
def float32_policy_after():
  yield
  keras.mixed_precision.set_dtype_policy("float32")


@pytest.mark.parametrize(
  "distill_loss,temperature,label_smoothing,l2",
  [("mse", 1.0, 0.0, 0.0), ("kl", 3.0, 0.1, 0.0), ("mse", 1.0, 0.0, 1e-2)],
)
def test_train_step_loss_equals_hand_combination(distill_loss, temperature, label_smoothing, l2):
  student = tiny(3, 0, "student", l2=l2)
  teacher = tiny(2, 1, "teacher")
  x, y = batch(6)
  s = student.predict(x["rgb"], verbose=0).astype("float64")
  t = teacher.predict(x["flow"], verbose=0).astype("float64")
  target = np.eye(NUM_CLASSES)[y] * (1 - label_smoothing) + label_smoothing / NUM_CLASSES
  ce = -(target * np.log(np_softmax(s))).sum(-1)
  if distill_loss == "mse":
    d = ((s - t) ** 2).mean(-1)
  else:
    p_t, p_s = np_softmax(t / temperature), np_softmax(s / temperature)
    d = (p_t * np.log(p_t / p_s)).sum(-1) * temperature**2
  reg = sum(l2 * (w.astype("float64") ** 2).sum() for w in student.get_weights() if w.ndim > 1)
  expected = 0.7 * ce.mean() + 2.5 * d.mean() + reg

  distiller = D3DDistiller(
    student,
    teacher,
    label_weight=0.7,
    distill_weight=2.5,
    distill_loss=distill_loss,
    temperature=temperature,
    label_smoothing=label_smoothing,
  )
  distiller.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
  logs = distiller.fit(x, y, batch_size=6, epochs=1, verbose=0).history
  assert logs["loss"][0] == pytest.approx(expected, rel=1e-5)
  assert logs["label_loss"][0] == pytest.approx(ce.mean(), rel=1e-5)
  assert logs["distill_loss"][0] == pytest.approx(d.mean(), rel=1e-5)
  assert logs["top1"][0] == pytest.approx(np.mean(s.argmax(-1) == y))
  assert logs["teacher_top1"][0] == pytest.approx(np.mean(t.argmax(-1) == y))
  # lr=0 left the weights unchanged: evaluate reports the same objective (incl. regularization).
  val = distiller.evaluate(x, y, batch_size=6, verbose=0, return_dict=True)
  assert val["loss"] == pytest.approx(expected, rel=1e-5)


def test_teacher_frozen_student_trained():
  student = tiny(3, 0, "student")
  teacher = tiny(2, 1, "teacher", bn_dropout=True)  # BN moving stats + dropout must stay inert
  teacher_before = [w.copy() for w in teacher.get_weights()]
  student_before = [w.copy() for w in student.get_weights()]
  x, y = batch(16)
  distiller = D3DDistiller(student, teacher)
  assert teacher.trainable is False
  distiller.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
  logs = distiller.fit(x, y, batch_size=4, epochs=2, verbose=0).history  # 8 steps
  for before, after in zip(teacher_before, teacher.get_weights(), strict=True):
    np.testing.assert_array_equal(before, after)
  assert (
    max(np.abs(b - a).max() for b, a in zip(student_before, student.get_weights(), strict=True))
    > 1e-3
  )
  # Dropout disabled => teacher accuracy is deterministic across epochs.
  assert logs["teacher_top1"][0] == logs["teacher_top1"][1]
  assert len(distiller.trainable_variables) == len(student.trainable_variables)


@pytest.mark.parametrize("with_teacher", [False, True])
def test_distill_weight_zero_matches_plain_student_training(with_teacher):
  x, y = batch(12)
  reference = tiny(3, 0, "reference")
  reference.compile(
    optimizer=keras.optimizers.SGD(0.2, momentum=0.9),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
  )
  student = tiny(3, 0, "student")
  student.set_weights(reference.get_weights())
  teacher = tiny(2, 1, "teacher") if with_teacher else None
  distiller = D3DDistiller(student, teacher, distill_weight=0.0)
  distiller.compile(optimizer=keras.optimizers.SGD(0.2, momentum=0.9))

  ref_logs = reference.fit(x["rgb"], y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
  logs = distiller.fit(
    x, y, batch_size=4, epochs=2, shuffle=False, verbose=0
  ).history  # 6 steps each
  for a, b in zip(reference.get_weights(), student.get_weights(), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(logs["loss"], ref_logs["loss"], rtol=1e-5)


def test_mirrored_two_replicas_match_one_replica():
  env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  proc = subprocess.run(
    [sys.executable, os.path.join(HERE, "mirrored_helper.py")],
    capture_output=True,
    text=True,
    env=env,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  assert result["replicas"] == [1, 2]
  np.testing.assert_allclose(result["losses"][0], result["losses"][1], rtol=1e-5)
  assert result["max_weight_change"] > 1e-2  # the runs really trained (L2-regularized student)
  assert result["max_weight_diff"] < 1e-5
  # evaluate: the same epoch aggregates with 2 replicas; RGB-only has no teacher metrics.
  one, two = result["evals"]
  assert sorted(one["rgb"]) == ["accuracy", "label_loss", "loss", "top1", "top5"]
  assert sorted(one["full"]) == sorted([*one["rgb"], "distill_loss", "teacher_top1"])
  for name in ("full", "rgb"):
    assert two[name] == pytest.approx(one[name], rel=1e-5)
    assert one[name]["accuracy"] == pytest.approx(one[name]["top1"])


def test_two_stream_teacher_averages_logits():
  rgb_teacher, flow_teacher = tiny(3, 2, "rgb_teacher"), tiny(2, 1, "flow_teacher")
  student = tiny(3, 0, "student")
  x, y = batch(6)
  t = (rgb_teacher.predict(x["rgb"], verbose=0) + flow_teacher.predict(x["flow"], verbose=0)) / 2
  s = student.predict(x["rgb"], verbose=0)
  distiller = D3DDistiller(student, [rgb_teacher, flow_teacher], teacher_input=["rgb", "flow"])
  assert rgb_teacher.trainable is False and flow_teacher.trainable is False
  distiller.compile(optimizer="sgd")
  logs = distiller.evaluate(x, y, batch_size=6, verbose=0, return_dict=True)
  assert logs["distill_loss"] == pytest.approx(((s - t) ** 2).mean(), rel=1e-5)
  assert logs["teacher_top1"] == pytest.approx(np.mean(t.argmax(-1) == y))


def test_evaluate_predict_and_callbacks():
  distiller = D3DDistiller(tiny(3, 0, "student"), tiny(2, 1, "teacher"))
  distiller.compile(optimizer=keras.optimizers.SGD(0.05))
  x, y = batch(8)
  seen = []
  cb = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(sorted(logs)))
  distiller.fit(x, y, batch_size=4, epochs=1, validation_data=(x, y), verbose=0, callbacks=[cb])
  assert seen[0] == sorted(
    ["loss", "label_loss", "distill_loss", "top1", "top5", "teacher_top1"]
    + [
      "val_loss",
      "val_label_loss",
      "val_distill_loss",
      "val_top1",
      "val_top5",
      "val_teacher_top1",
    ]
  )
  # RGB only at evaluation: no distillation term (absent, not 0), loss == label loss.
  rgb_only = distiller.evaluate({"rgb": x["rgb"]}, y, verbose=0, return_dict=True)
  assert sorted(rgb_only) == ["label_loss", "loss", "top1", "top5"]
  assert rgb_only["loss"] == pytest.approx(rgb_only["label_loss"])
  expected = distiller.student.predict(x["rgb"], verbose=0)
  np.testing.assert_allclose(distiller.predict({"rgb": x["rgb"]}, verbose=0), expected, rtol=1e-6)
  np.testing.assert_allclose(
    distiller.predict(x["rgb"], verbose=0), expected, rtol=1e-6
  )  # bare tensor
  # Supervised stream (no teacher): no teacher metric at all.
  flow_trainer = D3DDistiller(tiny(2, 1, "flow"), student_input="flow")
  assert [m.name for m in flow_trainer.metrics] == ["loss", "label_loss", "top1", "top5"]
  flow_trainer.compile(optimizer="sgd")
  history = flow_trainer.fit({"flow": x["flow"]}, y, batch_size=4, verbose=0).history
  assert sorted(history) == ["label_loss", "loss", "top1", "top5"]


def test_evaluate_returns_epoch_aggregates_without_absent_teacher_metrics():
  student, teacher = tiny(3, 0, "student"), tiny(2, 1, "teacher")
  x, y = batch(12)
  s = student.predict(x["rgb"], verbose=0).astype("float64")
  t = teacher.predict(x["flow"], verbose=0).astype("float64")
  ce = -np.log(np_softmax(s)[np.arange(12), y])
  d = ((s - t) ** 2).mean(-1)
  assert abs(ce[8:].mean() - ce.mean()) > 1e-2  # the last of 3 batches alone would differ
  assert abs(d[8:].mean() - d.mean()) > 1e-3
  top1 = np.mean(s.argmax(-1) == y)
  rgb_expected = {"loss": ce.mean(), "label_loss": ce.mean(), "top1": top1, "top5": 1.0}
  full_expected = dict(rgb_expected, loss=(ce + 0.5 * d).mean(), distill_loss=d.mean(),
                       teacher_top1=np.mean(t.argmax(-1) == y))
  distiller = D3DDistiller(student, teacher, distill_weight=0.5)
  distiller.compile(optimizer=keras.optimizers.SGD(0.0))

  def evaluate(inputs):
    return distiller.evaluate(inputs, y, batch_size=4, verbose=0, return_dict=True)

  # Full, RGB-only (dict and bare tensor), then full again: keys follow the inputs.
  assert evaluate(x) == pytest.approx(full_expected, rel=1e-5)
  assert evaluate({"rgb": x["rgb"]}) == pytest.approx(rgb_expected, rel=1e-5)
  assert evaluate(x["rgb"]) == pytest.approx(rgb_expected, rel=1e-5)
  assert evaluate(x) == pytest.approx(full_expected, rel=1e-5)
  # fit with RGB-only validation: training keeps the teacher's metrics, validation has none.
  history = distiller.fit(x, y, batch_size=4, validation_data=({"rgb": x["rgb"]}, y),
                          validation_batch_size=4, shuffle=False, verbose=0).history
  assert {k: v[0] for k, v in history.items()} == pytest.approx(
    {**full_expected, **{f"val_{k}": v for k, v in rgb_expected.items()}}, rel=1e-5)


def test_compile_rejects_loss_and_honours_metrics():
  student = tiny(3, 0, "student")
  distiller = D3DDistiller(student, tiny(2, 1, "teacher"))
  for bad in ({"loss": "sparse_categorical_crossentropy"}, {"loss_weights": [1.0]}):
    with pytest.raises(ValueError, match="label_weight, distill_weight, distill_loss"):
      distiller.compile(optimizer="sgd", **bad)
  distiller.compile(optimizer=keras.optimizers.SGD(1.0, momentum=0.9), metrics=["accuracy"],
                    weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="w_acc")])
  x, y = batch(12)
  w = np.array([1.0, 0.0, 2.0] * 4, dtype="float32")
  history = distiller.fit(x, y, sample_weight=w, batch_size=4, epochs=4, shuffle=False,
                          verbose=0).history
  assert len(set(history["top1"])) > 1  # accuracy changes between epochs ...
  # ... and w_acc (the same metric as our weighted top1) follows it: reset every epoch.
  np.testing.assert_allclose(history["w_acc"], history["top1"], rtol=1e-6)
  assert np.all(np.isfinite(history["accuracy"]))
  assert [m.name for m in distiller.metrics[-1].metrics] == ["accuracy", "w_acc"]
  correct = student.predict(x["rgb"], verbose=0).argmax(-1) == y
  logs = distiller.evaluate(x, y, sample_weight=w, batch_size=4, verbose=0, return_dict=True)
  assert logs["accuracy"] == pytest.approx(correct.mean())  # `metrics`: unweighted
  assert logs["w_acc"] == pytest.approx((w * correct).sum() / w.sum())
  assert logs["w_acc"] == pytest.approx(logs["top1"])
  # A compile metric may not shadow one of ours.
  distiller.compile(optimizer="sgd", metrics=[keras.metrics.SparseCategoricalAccuracy("top1")])
  with pytest.raises(ValueError, match="clash"):
    distiller.evaluate(x, y, verbose=0)


def test_top5_uses_min_of_5_and_num_classes():
  distiller = D3DDistiller(tiny(3, 0, "s", num_classes=3), tiny(2, 1, "t", num_classes=3))
  assert distiller.top5._fn_kwargs["k"] == 3


def test_jit_compile_matches_eager_loss():
  x, y = batch(8)
  results = []
  for jit in (False, True):
    distiller = D3DDistiller(
      tiny(3, 0, "student"), tiny(2, 1, "teacher"), distill_loss="kl", temperature=2.0
    )
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit)
    results.append(
      distiller.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    )
  assert np.isfinite(results[1])
  assert results[1] == pytest.approx(results[0], rel=1e-4)


def test_mixed_bfloat16_smoke(float32_policy_after):
  keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
  student, teacher = tiny(3, 0, "student"), tiny(2, 1, "teacher")
  x, y = batch(8)
  assert student(x["rgb"]).dtype == "bfloat16"
  distiller = D3DDistiller(student, teacher)
  distiller.compile(optimizer=keras.optimizers.SGD(0.1))
  history = distiller.fit(x, y, batch_size=4, epochs=1, verbose=0).history  # 2 steps
  assert np.isfinite(history["loss"][0]) and history["loss"][0] > 0
  assert all(v.dtype == "float32" for v in student.trainable_variables)


def test_bad_arguments_raise_clear_errors():
  student = tiny(3, 0, "student", num_classes=5)
  with pytest.raises(ValueError) as err:
    D3DDistiller(student, tiny(2, 1, "teacher", num_classes=7))
  assert "5" in str(err.value) and "7" in str(err.value)
  with pytest.raises(ValueError) as err:
    D3DDistiller(student, tiny(2, 1, "teacher"), distill_loss="cosine")
  assert "'mse'" in str(err.value) and "'kl'" in str(err.value) and "'cosine'" in str(err.value)
  with pytest.raises(ValueError, match="distill_weight=-1"):
    D3DDistiller(student, distill_weight=-1)
  with pytest.raises(ValueError, match="label_smoothing=1.0"):
    D3DDistiller(student, label_smoothing=1.0)
  with pytest.raises(ValueError, match="teacher_input"):
    D3DDistiller(student, [tiny(3, 2, "a"), tiny(2, 1, "b")], teacher_input="flow")
  with pytest.raises(ValueError, match="student"):
    D3DDistiller("not a model")
  distiller = D3DDistiller(student, tiny(2, 1, "teacher"))
  distiller.compile(optimizer="sgd")
  x, y = batch(4)
  with pytest.raises(ValueError, match="flow"):
    distiller.fit({"rgb": x["rgb"]}, y, verbose=0)


def test_save_and_load_keras_file(tmp_path):
  student = tiny(3, 0, "student")
  teachers = [tiny(3, 2, "rgb_teacher"), tiny(2, 1, "flow_teacher")]
  distiller = D3DDistiller(
    student,
    teachers,
    teacher_input=["rgb", "flow"],
    distill_loss="kl",
    temperature=2.0,
    distill_weight=0.3,
  )
  distiller.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
  x, y = batch(8)
  distiller.fit(x, y, batch_size=4, epochs=1, verbose=0)
  path = str(tmp_path / "d3d.keras")
  distiller.save(path)
  with warnings.catch_warnings():
    warnings.simplefilter("error", UserWarning)  # e.g. Keras' "compile() was not called"
    loaded = keras.models.load_model(path)
  assert isinstance(loaded, D3DDistiller)
  # Compiled again from the saved config, compile() metrics included.
  assert loaded.evaluate(x, y, verbose=0, return_dict=True) == pytest.approx(
    distiller.evaluate(x, y, verbose=0, return_dict=True))
  assert isinstance(loaded.student, keras.Model)
  np.testing.assert_array_equal(
    loaded.student.predict(x["rgb"], verbose=0), distiller.student.predict(x["rgb"], verbose=0)
  )
  assert [t.trainable for t in loaded.teacher] == [False, False]
  for key, a, b in zip(["rgb", "flow"], loaded.teacher, teachers, strict=True):
    np.testing.assert_array_equal(a.predict(x[key], verbose=0), b.predict(x[key], verbose=0))
  config = loaded.get_config()
  assert (config["distill_loss"], config["temperature"], config["distill_weight"]) == (
    "kl",
    2.0,
    0.3,
  )
  assert config["teacher_input"] == ["rgb", "flow"]
  # Training resumes from the saved optimizer state.
  assert np.isfinite(loaded.fit(x, y, batch_size=4, epochs=1, verbose=0).history["loss"][0])


def test_loss_scale_optimizer_gives_same_update_as_inner_optimizer():
  x, y = batch(8)
  weights = []
  for wrap in (False, True):
    student = tiny(3, 0, "student")
    optimizer = keras.optimizers.SGD(0.2)
    if wrap:
      optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=2.0**10)
    distiller = D3DDistiller(student, tiny(2, 1, "teacher"))
    distiller.compile(optimizer=optimizer)
    distiller.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    weights.append(student.get_weights())
  for a, b in zip(*weights, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_sample_weight_scales_per_example_losses():
  student, teacher = tiny(3, 0, "student"), tiny(2, 1, "teacher")
  x, y = batch(4)
  w = np.array([1.0, 0.0, 2.0, 1.0], dtype="float32")
  s = student.predict(x["rgb"], verbose=0).astype("float64")
  t = teacher.predict(x["flow"], verbose=0).astype("float64")
  per_example = -np.log(np_softmax(s)[np.arange(4), y]) + ((s - t) ** 2).mean(-1)
  distiller = D3DDistiller(student, teacher)
  distiller.compile(optimizer=keras.optimizers.SGD(0.0))
  logs = distiller.fit(x, y, sample_weight=w, batch_size=4, verbose=0).history
  # Like tf.nn.compute_average_loss: sum(w * loss) / batch size.
  assert logs["loss"][0] == pytest.approx((w * per_example).sum() / 4, rel=1e-5)


def test_uint8_clips_are_normalised_on_the_device():
  """`train_dataset(uint8_clips=True)` batches: the student and the teacher see x / 127.5 - 1
  of the uint8 inputs, in evaluate, fit and predict alike."""
  rng = np.random.default_rng(3)
  x8 = {"rgb": rng.integers(0, 256, size=(6, 4, 8, 8, 3)).astype("uint8"),
        "flow": rng.integers(0, 256, size=(6, 4, 8, 8, 2)).astype("uint8")}
  xf = {k: v.astype("float32") * (2.0 / 255.0) - 1.0 for k, v in x8.items()}
  y = rng.integers(0, NUM_CLASSES, size=6).astype("int32")
  logs, weights, predictions = [], [], []
  for x in (x8, xf):
    distiller = D3DDistiller(tiny(3, 0, "student"), tiny(2, 1, "teacher"))
    distiller.compile(optimizer=keras.optimizers.SGD(0.1))
    logs.append(distiller.evaluate(x, y, batch_size=6, verbose=0, return_dict=True))
    distiller.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
    weights.append(distiller.student.get_weights())
    predictions.append(distiller.predict(x, batch_size=6, verbose=0))
  assert logs[0]["distill_loss"] > 0
  for key in ("loss", "label_loss", "distill_loss", "teacher_top1"):
    assert logs[0][key] == pytest.approx(logs[1][key], rel=1e-6), key
  for a, b in zip(*weights):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(predictions[0], predictions[1], rtol=1e-5, atol=1e-6)
