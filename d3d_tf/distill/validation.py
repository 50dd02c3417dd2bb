"""Argument checks of `D3DDistiller`: every bad argument fails in the constructor, before any
Keras state exists, with a message that names the argument and the value received."""

import math

import keras


def num_classes(model):
  """Last output dimension of a (built, functional) model, else None."""
  outputs = getattr(model, "outputs", None)
  if outputs:
    dim = outputs[0].shape[-1]
    return int(dim) if dim is not None else None
  return None


def _is_number(value):
  return not isinstance(value, bool) and isinstance(value, (int, float))


def check_weight(name, value):
  if not _is_number(value) or not math.isfinite(value) or value < 0:
    raise ValueError(f"`{name}` must be a finite number >= 0; received {name}={value!r}.")
  return float(value)


def resolve_teachers(student, teacher, teacher_input):
  """Validates ``teacher``/``teacher_input``; returns (list of teachers, list of input keys)."""
  if teacher is None:
    teachers = []
  elif isinstance(teacher, (list, tuple)):
    teachers = list(teacher)
    if not teachers:
      raise ValueError("`teacher` must be None, a keras.Model or a non-empty list; got [].")
  else:
    teachers = [teacher]
  for i, t in enumerate(teachers):
    if not isinstance(t, keras.Model):
      raise ValueError(
        f"`teacher` must be a keras.Model or a list of them; received element {i} "
        f"of type {type(t).__name__}."
      )
    if t is student:
      raise ValueError("`teacher` must not be the `student` model itself.")
  if isinstance(teacher_input, str):
    if len(teachers) > 1:
      raise ValueError(
        f"`teacher` is a list of {len(teachers)} models, so `teacher_input` must be a "
        f"list of {len(teachers)} keys; received teacher_input={teacher_input!r}."
      )
    return teachers, [teacher_input] * max(len(teachers), 1)
  if isinstance(teacher_input, (list, tuple)) and all(isinstance(k, str) for k in teacher_input):
    if teachers and len(teacher_input) != len(teachers):
      raise ValueError(
        f"`teacher_input` must have one key per teacher ({len(teachers)}); "
        f"received teacher_input={teacher_input!r}."
      )
    return teachers, list(teacher_input)
  raise ValueError(
    f"`teacher_input` must be a string key or a list of keys; "
    f"received teacher_input={teacher_input!r}."
  )


def check_scalars(temperature, label_smoothing, student_input):
  if not _is_number(temperature) or not temperature > 0:
    raise ValueError(f"`temperature` must be a number > 0; received temperature={temperature!r}.")
  if not _is_number(label_smoothing) or not 0.0 <= label_smoothing < 1.0:
    raise ValueError(
      f"`label_smoothing` must be a number in [0, 1); received label_smoothing={label_smoothing!r}."
    )
  if not isinstance(student_input, str):
    raise ValueError(
      f"`student_input` must be a string key; received student_input={student_input!r}."
    )


def check_same_classes(student, teachers):
  """Returns the student's number of classes (None if unknown); raises if a teacher differs."""
  classes = num_classes(student)
  for i, t in enumerate(teachers):
    t_classes = num_classes(t)
    if classes is not None and t_classes is not None and t_classes != classes:
      raise ValueError(
        f"Student and teacher must predict the same classes: student has {classes} "
        f"output classes but teacher {i} ({t.name!r}) has {t_classes}."
      )
  return classes


def check_compile_args(loss, loss_weights):
  """`compile()` may not set a loss: the distiller's objective comes from its constructor."""
  if loss is not None or loss_weights is not None:
    raise ValueError(
      "D3DDistiller.compile() takes no `loss` or `loss_weights`: the objective is "
      "label_weight * cross-entropy(y, student) + distill_weight * distill_loss(teacher, "
      "student), set by the constructor arguments label_weight, distill_weight, distill_loss, "
      f"temperature and label_smoothing. Received loss={loss!r}, loss_weights={loss_weights!r}."
    )
