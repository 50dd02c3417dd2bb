"""The confusion image: rates per true class, counts in cells, accuracy in the title."""

import numpy as np

from d3d_tf.evaluation import report


def test_rows_normalised_counts_shown_and_accuracy_in_title():
  matrix = np.array([[3, 1, 0], [0, 2, 2], [0, 0, 0]])
  fig = report.confusion_figure(matrix, ["walk", "run", "jump"], title="rgb on val-*")
  ax, bar = fig.axes
  shown = ax.images[0].get_array()
  np.testing.assert_allclose(shown.sum(axis=1), [1.0, 1.0, 0.0])
  assert "top-1 62.5%" in ax.get_title() and "rgb on val-*" in ax.get_title()
  assert bar.get_ylabel() == "fraction of the true class"
  assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "2", "3"]
  assert ax.get_xticklabels()[0].get_rotation() == 45
