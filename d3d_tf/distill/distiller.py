"""One Keras trainer for all three D3D streams: RGB, flow, and distilled RGB.

Why a custom ``keras.Model`` and not ``keras.distillation.Distiller``: Keras'
Distiller feeds the SAME ``x`` to teacher and student. D3D needs the teacher
to see ``x["flow"]`` and the student to see ``x["rgb"]`` of the same clip, so
the train step is ours. It is written for the TensorFlow backend with
``tf.distribute`` in mind: per-example losses are divided by the GLOBAL batch
size and regularization by the replica count, so N replicas produce the
same update as one device with the same global batch.
"""

import keras
import tensorflow as tf

from d3d_tf.data import device_resize
from d3d_tf.data import processors
from d3d_tf.distill import strategy_steps
from d3d_tf.distill import validation
from d3d_tf.distill.losses import UNLABELLED, get_distill_loss, label_cross_entropy, labelled

# Raised (at run time, in the step) when a run without a teacher meets an unlabelled example.
NEEDS_TEACHER = (f"An example with label {UNLABELLED} (unlabelled) reached a D3DDistiller without "
                 "a teacher, which has nothing to learn from it: pass a teacher (d3d_tf.train "
                 "--unlabelled_train_files needs --stream=d3d).")


@keras.saving.register_keras_serializable(package="d3d_tf")
class D3DDistiller(keras.Model):
  """Trains a student on labels plus distillation towards a frozen teacher.

  Loss per example ``i`` (logits cast to float32):
  ``label_weight * CE(y_i, s_i) + distill_weight * D(s_i, t_i)``, summed over
  the replica batch and divided by the GLOBAL batch size, plus the student's
  regularization losses divided by the number of replicas. ``s`` are the
  student's logits on ``x[student_input]``; ``t`` the teacher's logits on
  ``x[teacher_input]`` (averaged over teachers when several are given),
  always computed with ``training=False``. uint8 inputs (``train_dataset(uint8_clips=True)``)
  are mapped to [-1, 1] here, on the device (``processors.to_unit_on_device``), and uint8 crop
  buffers (``train_dataset(resize_on_device=True)``) are resized here
  (``device_resize.model_input``).

  With ``teacher=None`` it is plain supervised training, so the same class
  trains the RGB stream, the flow stream and D3D.

  Unlabelled examples: label ``-1`` (``losses.UNLABELLED``) makes an example's
  cross-entropy 0 (and its gradient), while its distillation term counts as usual; it still
  counts in the GLOBAL batch size that divides the sum, so a batch's label term weighs each
  labelled clip as in a fully labelled batch (no cross-replica count of labels is needed).
  Accuracies (``top1``, ``top5``, ``teacher_top1``, compile metrics) skip it and
  ``label_loss`` is the mean over labelled examples. Without a teacher an unlabelled example in
  ``fit`` is an error (``tf.errors.InvalidArgumentError``; XLA drops the check).

  Args:
      student: ``keras.Model`` mapping ``[B,T,H,W,C]`` to ``[B,num_classes]``
          logits. Trained; available as ``self.student`` for export.
      teacher: ``None``, a ``keras.Model``, or a list of models (e.g. an RGB
          and a flow model; their logits are averaged). Frozen here
          (``trainable = False``).
      label_weight: Weight of the label cross-entropy, >= 0.
      distill_weight: Weight of the distillation term, >= 0 (ignored
          without a teacher).
      distill_loss: ``"mse"`` (default, mean over classes of squared logit
          differences), ``"kl"`` (``T**2 * KL(softmax(t/T)||softmax(s/T))``),
          or a per-example ``keras.losses.Loss`` called as
          ``loss(teacher_logits, student_logits)``.
      temperature: Temperature for ``"kl"``, > 0.
      label_smoothing: Label smoothing of the cross-entropy, in ``[0, 1)``.
      student_input: Key of ``x`` fed to the student.
      teacher_input: Key of ``x`` fed to the teacher, or a list of keys (one
          per teacher) when ``teacher`` is a list.
      **kwargs: Forwarded to ``keras.Model`` (e.g. ``name``).

  Metrics (``self.metrics``): ``loss`` (total objective), ``label_loss``, ``top1``,
  ``top5`` (k = ``min(5, num_classes)``); with a teacher also ``distill_loss`` and
  ``teacher_top1``; then those of ``compile(metrics=..., weighted_metrics=...)``, computed on
  the student's logits against ``y`` (``weighted_metrics`` with ``sample_weight``).
  ``compile`` takes no ``loss``: the objective above is set by the constructor.

  ``evaluate`` does not need the teacher's input: on batches without it (``x`` without the
  ``teacher_input`` keys, or a plain tensor) ``distill_loss`` and ``teacher_top1`` are left
  out of the results rather than reported as 0, and ``loss`` is ``label_weight * CE`` plus
  regularization.

  ``evaluate`` is CLIP-level: every clip of the dataset counts once (a video with K clips
  K times, its clips' logits not averaged), unlike the paper's video-level numbers. For those
  use ``d3d_tf.evaluation.evaluate_lib.evaluate`` (``python -m d3d_tf.evaluate``) after
  training and ``d3d_tf.training.callbacks.VideoValidation`` during it.

  Examples:

  ```python
  distiller = D3DDistiller(student=rgb_s3dg, teacher=flow_s3dg,
                           distill_weight=1.0, distill_loss="mse")
  distiller.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
  # dataset yields ({"rgb": [B,T,H,W,3], "flow": [B,T,H,W,2]}, labels[B])
  distiller.fit(train_ds, validation_data=val_ds, epochs=10)
  distiller.student.save("d3d_rgb.keras")   # plain Keras model

  # RGB or flow stream alone: same trainer, no teacher.
  flow_trainer = D3DDistiller(student=flow_s3dg, student_input="flow")
  ```
  """

  def __init__(
    self,
    student,
    teacher=None,
    label_weight=1.0,
    distill_weight=1.0,
    distill_loss="mse",
    temperature=1.0,
    label_smoothing=0.0,
    student_input="rgb",
    teacher_input="flow",
    **kwargs,
  ):
    # ---- validate everything before touching Keras state ----
    if not isinstance(student, keras.Model):
      raise ValueError(
        f"`student` must be a keras.Model; received student of type {type(student).__name__}."
      )
    teachers, teacher_inputs = validation.resolve_teachers(student, teacher, teacher_input)
    label_weight = validation.check_weight("label_weight", label_weight)
    distill_weight = validation.check_weight("distill_weight", distill_weight)
    validation.check_scalars(temperature, label_smoothing, student_input)
    # Raises ValueError listing the allowed values.
    distill_fn = get_distill_loss(distill_loss, temperature=temperature)
    num_classes = validation.check_same_classes(student, teachers)

    super().__init__(**kwargs)
    self.student = student
    for t in teachers:
      t.trainable = False
    self._teachers = teachers
    self._teacher_is_list = isinstance(teacher, (list, tuple))
    self.label_weight = label_weight
    self.distill_weight = distill_weight
    self._distill_loss_arg = distill_loss
    self.distill_fn = distill_fn
    self.temperature = float(temperature)
    self.label_smoothing = float(label_smoothing)
    self.student_input = student_input
    self.teacher_inputs = teacher_inputs
    self._teacher_input_arg = teacher_input
    self.num_classes = num_classes

    k = min(5, num_classes) if num_classes else 5
    self.loss_tracker = keras.metrics.Mean(name="loss")
    self.label_loss_tracker = keras.metrics.Mean(name="label_loss")
    self.top1 = keras.metrics.SparseCategoricalAccuracy(name="top1")
    self.top5 = keras.metrics.SparseTopKCategoricalAccuracy(k=k, name="top5")
    # No teacher, no teacher metrics (rather than zeros).
    self.distill_loss_tracker = keras.metrics.Mean(name="distill_loss") if teachers else None
    self.teacher_top1 = (
      keras.metrics.SparseCategoricalAccuracy(name="teacher_top1") if teachers else None
    )
    if student.built and all(t.built for t in teachers):
      self.built = True

  # ------------------------------------------------------------------ API
  @property
  def teacher(self):
    """The frozen teacher (a model, a list of models, or None)."""
    if not self._teachers:
      return None
    return list(self._teachers) if self._teacher_is_list else self._teachers[0]

  @property
  def metrics(self):
    # Keras' own `loss` tracker (made by compile) stays out: `loss_tracker` holds our objective.
    metrics = [
      self.loss_tracker,
      self.label_loss_tracker,
      self.distill_loss_tracker,
      self.top1,
      self.top5,
      self.teacher_top1,
      self._compile_metrics,  # compile(metrics=...) or None; private Keras 3.15 attribute
    ]
    return [m for m in metrics if m is not None]

  def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
              weighted_metrics=None, **kwargs):
    """``keras.Model.compile`` without ``loss``/``loss_weights`` (the constructor sets the
    objective; passing them raises). ``metrics``/``weighted_metrics`` are computed on the
    student's logits against ``y``."""
    validation.check_compile_args(loss, loss_weights)
    super().compile(optimizer=optimizer, metrics=metrics, weighted_metrics=weighted_metrics,
                    **kwargs)

  def compile_from_config(self, config):
    # Keras skips compile() when loading a model that overrides it; ours takes the saved config.
    self.compile(**keras.saving.deserialize_keras_object(config))
    if self.built:
      self.optimizer.build(self.trainable_variables)  # Slots exist before the weights load.

  def get_metrics_result(self):
    """Keras' results, without the teacher's metrics if no batch since the last reset had the
    teacher's input (RGB-only evaluation): absent, not 0.

    Keras' fit/evaluate return these epoch aggregates only when a step's logs have the same
    keys, else the last step's logs (under tf.distribute the mean of the replicas' running
    means, not the epoch mean); `_step_logs` leaves out the same two.
    """
    results = super().get_metrics_result()
    # Eagerly only: Keras' symbolic build calls this in a graph, where counts have no value.
    if self.distill_loss_tracker is not None and tf.executing_eagerly():
      if not keras.ops.convert_to_numpy(self.distill_loss_tracker.count) > 0:
        results.pop(self.distill_loss_tracker.name, None)
        results.pop(self.teacher_top1.name, None)
    return results

  def call(self, inputs, training=None):
    return self.student(self._student_x(inputs), training=training)

  def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    # Private Keras hook (keras 3.15 TF trainer; hence the pin in setup.py). Under a strategy,
    # Keras averages one distributed batch with `strategy.reduce("MEAN", batch)` only to learn
    # its shapes; MultiWorkerMirroredStrategy rejects a nested batch ({"rgb": ..}, labels):
    # "Attempt to convert a value ({'rgb': PerReplica ..}) with an unsupported type (dict)".
    # One replica's part has the same shapes. Usually everything is built (student and
    # teachers in __init__, optimizer by the caller, no compile metrics): no batch is drawn.
    compiled = self._compile_metrics
    optimizer_built = self.optimizer is None or self.optimizer.built
    if self.built and optimizer_built and (compiled is None or compiled.built):
      return
    if iterator is not None:
      data_batch = strategy_steps.first_replica_batch(self.distribute_strategy, iterator)
    super()._maybe_symbolic_build(data_batch=data_batch)

  # -------------------------------------------------------------- helpers
  def _student_x(self, x):
    if isinstance(x, dict):
      if self.student_input not in x:
        raise ValueError(
          f"Input dict has keys {sorted(x)} but the student reads "
          f"student_input={self.student_input!r}."
        )
      # uint8 clips are normalised, and uint8 crop buffers resized, here, on the device.
      return device_resize.model_input(x, self.student_input)
    return processors.to_unit_on_device(x)

  def _has_teacher_inputs(self, x):
    return bool(self._teachers) and isinstance(x, dict) and all(k in x for k in self.teacher_inputs)

  def _teacher_logits(self, x):
    logits = [
      tf.cast(t(device_resize.model_input(x, k), training=False), tf.float32)
      for t, k in zip(self._teachers, self.teacher_inputs, strict=True)
    ]
    mean = logits[0] if len(logits) == 1 else tf.add_n(logits) / float(len(logits))
    return tf.stop_gradient(mean)

  def _per_example_losses(self, y, student_logits, teacher_logits):
    """(total, CE, distillation or None without teacher logits), each [batch] float32."""
    ce = label_cross_entropy(y, student_logits, self.label_smoothing)
    if teacher_logits is None:
      return self.label_weight * ce, ce, None
    d = tf.cast(self.distill_fn(teacher_logits, student_logits), tf.float32)
    return self.label_weight * ce + self.distill_weight * d, ce, d

  def _regularization(self):
    """Sum of the student's regularization losses (weights and activity), float32."""
    if not self.student.losses:
      return 0.0
    return tf.add_n([tf.cast(r, tf.float32) for r in self.student.losses])

  def _objective(self, per_example, sample_weight):
    """Per-replica objective whose SUM over replicas is the global objective."""
    loss = tf.nn.compute_average_loss(per_example, sample_weight=sample_weight)
    reg = self._regularization()
    return loss + tf.nn.scale_regularization_loss(reg), reg

  def _update_metrics(self, y, student_logits, teacher_logits, total, ce, d, reg, sample_weight):
    mask = labelled(y)
    # Accuracies skip unlabelled examples: weight 0, and a stand-in label 0 they never count.
    y_known = tf.where(mask, tf.reshape(tf.cast(y, tf.int32), [-1]), 0)
    label_w = tf.cast(mask, tf.float32)
    if sample_weight is not None:
      w = tf.cast(tf.reshape(sample_weight, [-1]), tf.float32)
      total, ce = total * w, ce * w
      d = d * w if d is not None else None
      label_w = label_w * w
    # Trackers hold the replica-local mean; Keras averages replica results.
    self.loss_tracker.update_state(total + reg)
    self.label_loss_tracker.update_state(ce, sample_weight=tf.cast(mask, tf.float32))
    self.top1.update_state(y_known, student_logits, sample_weight=label_w)
    self.top5.update_state(y_known, student_logits, sample_weight=label_w)
    if teacher_logits is not None:
      self.distill_loss_tracker.update_state(d)
      self.teacher_top1.update_state(y_known, teacher_logits, sample_weight=label_w)
    if self._compile_metrics is not None:
      # `metrics=` take no sample weight in Keras: give them the labelled examples only.
      self._compile_metrics.update_state(
          tf.boolean_mask(tf.reshape(y, [-1]), mask), tf.boolean_mask(student_logits, mask),
          None if sample_weight is None else tf.boolean_mask(tf.reshape(sample_weight, [-1]),
                                                             mask))
    return self._step_logs(with_teacher=teacher_logits is not None)

  def _step_logs(self, with_teacher):
    """Results of `self.metrics` like `get_metrics_result`, less the teacher's without it."""
    skip = () if with_teacher else (id(self.distill_loss_tracker), id(self.teacher_top1))
    logs = {}
    for metric in self.metrics:
      if id(metric) in skip:
        continue
      result = metric.result()
      results = result if isinstance(result, dict) else {metric.name: result}
      clash = sorted(set(results) & set(logs))
      if clash:
        raise ValueError(
          f"compile() metric names {clash} clash with D3DDistiller's own metrics "
          f"{[m.name for m in self.metrics if m is not self._compile_metrics]}; rename them."
        )
      logs.update(results)
    return strategy_steps.reducible_logs(logs, self.distribute_strategy)

  # ---------------------------------------------------------------- steps
  def train_step(self, data):
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    teacher_logits = None
    if self._teachers:
      if not self._has_teacher_inputs(x):
        keys = sorted(x) if isinstance(x, dict) else type(x).__name__
        raise ValueError(
          f"Distillation needs x to be a dict with teacher_input keys "
          f"{self.teacher_inputs}; received {keys}."
        )
      teacher_logits = self._teacher_logits(x)  # outside the tape: no teacher activations kept
    else:
      tf.debugging.assert_none_equal(tf.cast(y, tf.int32), UNLABELLED, message=NEEDS_TEACHER)
    variables = self.student.trainable_variables
    with tf.GradientTape() as tape:
      student_logits = tf.cast(self.student(self._student_x(x), training=True), tf.float32)
      total, ce, d = self._per_example_losses(y, student_logits, teacher_logits)
      loss, reg = self._objective(total, sample_weight)
      # LossScaleOptimizer multiplies by its dynamic scale; other optimizers
      # apply `loss_scale_factor` or return the loss unchanged.
      scaled_loss = self.optimizer.scale_loss(loss)
    grads = tape.gradient(scaled_loss, variables)
    self.optimizer.apply(grads, variables)
    return self._update_metrics(y, student_logits, teacher_logits, total, ce, d, reg, sample_weight)

  def test_step(self, data):
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    teacher_logits = self._teacher_logits(x) if self._has_teacher_inputs(x) else None
    student_logits = tf.cast(self.student(self._student_x(x), training=False), tf.float32)
    total, ce, d = self._per_example_losses(y, student_logits, teacher_logits)
    reg = self._regularization()  # reported like Keras' own val loss
    return self._update_metrics(y, student_logits, teacher_logits, total, ce, d, reg, sample_weight)

  def predict_step(self, data):
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return self.student(self._student_x(x), training=False)

  # -------------------------------------------------------- serialization
  def get_config(self):
    config = super().get_config()
    teacher = None
    if self._teachers:
      teacher = [keras.saving.serialize_keras_object(t) for t in self._teachers]
      if not self._teacher_is_list:
        teacher = teacher[0]
    distill_loss = self._distill_loss_arg
    if not isinstance(distill_loss, str):
      distill_loss = keras.saving.serialize_keras_object(distill_loss)
    config.update(
      {
        "student": keras.saving.serialize_keras_object(self.student),
        "teacher": teacher,
        "label_weight": self.label_weight,
        "distill_weight": self.distill_weight,
        "distill_loss": distill_loss,
        "temperature": self.temperature,
        "label_smoothing": self.label_smoothing,
        "student_input": self.student_input,
        "teacher_input": self._teacher_input_arg
        if isinstance(self._teacher_input_arg, str)
        else list(self._teacher_input_arg),
      }
    )
    return config

  @classmethod
  def from_config(cls, config, custom_objects=None):
    config = dict(config)
    config["student"] = keras.saving.deserialize_keras_object(
      config["student"], custom_objects=custom_objects
    )
    teacher = config.get("teacher")
    if isinstance(teacher, list):
      config["teacher"] = [
        keras.saving.deserialize_keras_object(t, custom_objects=custom_objects) for t in teacher
      ]
    elif teacher is not None:
      config["teacher"] = keras.saving.deserialize_keras_object(
        teacher, custom_objects=custom_objects
      )
    if isinstance(config.get("distill_loss"), dict):
      config["distill_loss"] = keras.saving.deserialize_keras_object(
        config["distill_loss"], custom_objects=custom_objects
      )
    return cls(**config)


__all__ = ["D3DDistiller"]
