"""Fills a model's variables from a name table, all or nothing, with one line per problem."""

import numpy as np


class WeightsError(ValueError):
  """A checkpoint that does not fit the model; the message names the file and the tensor."""


def assign_from_table(rows, read, source_names, source):
  """Reads every row's tensor, checks it, then assigns them all.

  Args:
    rows: [(source name, Keras variable, transform(array, variable) -> array)].
    read: name -> numpy array.
    source_names: the names in the source that must all be used (training state and scopes
      outside the model already removed).
    source: the file, for messages.

  Raises:
    WeightsError: a tensor is missing, left unused, or has the wrong shape.
  """
  values = []
  for name, variable, transform in rows:
    if name not in source_names:
      raise WeightsError(f"{source}: no tensor {name!r}, which the model's "
                         f"{variable.path} needs (shape {tuple(variable.shape)}).")
    value = np.asarray(transform(np.asarray(read(name)), variable))
    if tuple(value.shape) != tuple(variable.shape):
      raise WeightsError(f"{source}: tensor {name!r} has shape {tuple(value.shape)} but the "
                         f"model's {variable.path} has {tuple(variable.shape)}.")
    values.append((variable, value))
  unused = sorted(set(source_names) - {name for name, _, _ in rows})
  if unused:
    more = f" and {len(unused) - 1} more" if len(unused) > 1 else ""
    raise WeightsError(f"{source}: tensor {unused[0]!r}{more} has no place in the model "
                       "(another architecture, or a layer this model does not build).")
  for variable, value in values:
    variable.assign(value.astype(variable.dtype))
  return len(values)
