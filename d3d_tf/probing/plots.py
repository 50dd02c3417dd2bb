"""The probe's pictures: EPE bars (endpoint x model) and predicted vs true flow (colour wheel)."""

from typing import Dict, List, Sequence

import numpy as np

from d3d_tf.video import optical_flow


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def epe_bar_chart(path: str, results: Dict[str, Dict[str, Dict[str, float]]],
                  endpoints: Sequence[str], title: str = "") -> str:
  """Grouped bars: one group per endpoint, one bar per model; the baselines as lines.

  Args:
    path: Output PNG.
    results: {model: {endpoint: {"epe", "zero_epe", "mean_epe"}}}; the baselines are the
      same for every probe (same held-out clips), so they are read from the first one.
    endpoints: Endpoint order on the x axis.
    title: Figure title.
  """
  plt = _pyplot()
  models = list(results)
  width = 0.8 / max(len(models), 1)
  fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(endpoints) * max(len(models), 2) / 2, 4))
  x = np.arange(len(endpoints))
  for i, model in enumerate(models):
    values = [results[model][e]["epe"] for e in endpoints]
    bars = ax.bar(x - 0.4 + width * (i + 0.5), values, width, label=model)
    ax.bar_label(bars, fmt="%.2f", fontsize=7)
  first = results[models[0]][endpoints[0]]
  ax.axhline(first["zero_epe"], color="black", linestyle="--", linewidth=1,
             label=f"zero flow ({first['zero_epe']:.2f})")
  ax.axhline(first["mean_epe"], color="gray", linestyle=":", linewidth=1.5,
             label=f"training mean flow ({first['mean_epe']:.2f})")
  ax.set_xticks(x, endpoints)
  ax.set_ylabel("EPE (pixels, lower is better)")
  ax.set_title(title or "Flow probe: end-point error on held-out clips")
  ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def color_wheel(size: int = 64) -> np.ndarray:
  """uint8 [size, size, 3] key of the flow colours: direction is hue, speed is brightness."""
  r = np.linspace(-1.0, 1.0, size)
  flow = np.stack(np.meshgrid(r, r), axis=-1)
  picture = optical_flow.flow_to_color(flow, max_magnitude=1.0)
  picture[np.hypot(flow[..., 0], flow[..., 1]) > 1.0] = 255
  return picture


def flow_panels(path: str, frames: np.ndarray, true: np.ndarray,
                predicted: Dict[str, Dict[str, np.ndarray]], endpoints: Sequence[str]) -> str:
  """One row per (clip, model): RGB frame, true flow, then each endpoint's prediction.

  Flow pictures of a row share one scale, the true flow's largest speed, so a dim prediction
  is an underestimate and a wrong hue a wrong direction.

  Args:
    path: Output PNG.
    frames: float [N, H, W, 3] in [-1, 1], the RGB frame at the start of each shown window.
    true: [N, T', S', S', 2] target flow (pixels); the middle time step is shown.
    predicted: {model: {endpoint: [N, T', S', S', 2]}}.
    endpoints: Column order.
  """
  plt = _pyplot()
  models = list(predicted)
  step = true.shape[1] // 2
  rows: List[tuple] = [(c, m) for c in range(len(true)) for m in models]
  cols = 2 + len(endpoints)
  fig, axes = plt.subplots(len(rows), cols + 1, figsize=(1.6 * (cols + 1), 1.7 * len(rows)),
                           squeeze=False)
  for r, (clip, model) in enumerate(rows):
    scale = max(float(np.hypot(*np.moveaxis(true[clip, step], -1, 0)).max()), 1e-3)
    pictures = [(np.clip((frames[clip] + 1.0) / 2.0, 0.0, 1.0), "frame"),
                (optical_flow.flow_to_color(true[clip, step], scale), "true")]
    for e in endpoints:
      pictures.append((optical_flow.flow_to_color(predicted[model][e][clip, step], scale), e))
    for c, (picture, name) in enumerate(pictures):
      ax = axes[r, c]
      ax.imshow(picture, interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if r == 0 or c >= 2:
        ax.set_title(name, fontsize=7)
      if c == 0:
        ax.set_ylabel(f"clip {clip}\n{model}", fontsize=7)
    axes[r, cols].axis("off")
  axes[0, cols].imshow(color_wheel())
  axes[0, cols].set_title("key", fontsize=7)
  fig.suptitle(f"Predicted vs true flow (time step {step}; brightness = speed / row's max "
               "true speed)", fontsize=8)
  # Keep ~0.2 inch between the column titles and the suptitle whatever the row count.
  fig.tight_layout(rect=(0, 0, 1, 1 - 0.2 / fig.get_figheight()))
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
