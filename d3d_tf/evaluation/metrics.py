"""Video-level classification metrics (NumPy): top-k, mean per-class accuracy, confusion.

Kinetics and the D3D paper report per-video top-1/top-5; UCF/HMDB and unbalanced splits are
better summarised by mean per-class accuracy, so both are computed from the same scores.
"""

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
  """Probabilities along the last axis (shifted by the max, so large logits do not overflow)."""
  z = logits - logits.max(axis=-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(axis=-1, keepdims=True)


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
  """Fraction of rows whose label is among the k highest scores (k capped at #classes)."""
  scores = np.asarray(scores)
  labels = np.asarray(labels)
  if len(labels) == 0:
    return float("nan")
  k = min(k, scores.shape[1])
  top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  return float(np.mean(np.any(top == labels[:, None], axis=1)))


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
  """int64 [num_classes, num_classes]: row = true class, column = predicted class."""
  matrix = np.zeros([num_classes, num_classes], np.int64)
  np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
  return matrix


def mean_per_class_accuracy(labels: np.ndarray, predictions: np.ndarray,
                            num_classes: int) -> float:
  """Mean over the classes present in `labels` of that class's top-1 recall."""
  matrix = confusion_matrix(labels, predictions, num_classes)
  support = matrix.sum(axis=1)
  present = support > 0
  if not present.any():
    return float("nan")
  return float(np.mean(np.diag(matrix)[present] / support[present]))


def summary(scores: np.ndarray, labels: np.ndarray) -> dict:
  """top1, top5 and mean_per_class accuracy of per-video scores [N, C]."""
  predictions = np.argmax(scores, axis=1)
  return {
      "top1": top_k_accuracy(scores, labels, 1),
      "top5": top_k_accuracy(scores, labels, 5),
      "mean_per_class": mean_per_class_accuracy(labels, predictions, scores.shape[1]),
      "num_videos": int(len(labels)),
  }
