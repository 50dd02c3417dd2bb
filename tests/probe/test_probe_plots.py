"""The flow-panel figure: its title sits above the column headers, not over them."""

import numpy as np
from matplotlib import pyplot as plt

from d3d_tf.probing import plots


def test_suptitle_clears_the_column_titles(tmp_path, monkeypatch):
  figures = []
  monkeypatch.setattr(plt, "close", figures.append)
  true = np.ones([2, 2, 4, 4, 2], np.float32)
  plots.flow_panels(str(tmp_path / "probe_flow.png"), np.zeros([2, 8, 8, 3], np.float32), true,
                    {"rgb": {"Mixed_4f": true}, "d3d": {"Mixed_4f": true}}, ["Mixed_4f"])
  fig = figures[0]
  renderer = fig.canvas.get_renderer()
  top_of_titles = max(ax.title.get_window_extent(renderer).y1 for ax in fig.axes)
  assert fig._suptitle.get_window_extent(renderer).y0 >= top_of_titles  # pylint: disable=protected-access
