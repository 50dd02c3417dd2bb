"""The report's "When does D3D help?" section: one row per benchmark variant.

A variant is a dataset (a `make_synthetic` data flagfile) on which scripts/reproduce.sh trains,
per seed, a flow teacher, an RGB baseline and a D3D student. Its row gives RGB, D3D, flow and
two-stream top-1 (mean ± sd over seeds), the paired D3D - RGB difference with its 95%
t-interval, and the motion probe's held-out EPE at Mixed_3c where the probe was run. A row is
read from a reproduce.sh root (`seed_*/`, `variant.json`, `probe/probe.json`) or, for runs
whose directories were not kept, from a JSON file of their transcribed per-seed numbers that
names where they came from (`docs/variants/*.json`); never from numbers typed into code.
"""

import glob
import json
import os
import re
from typing import Dict, List, Optional, Tuple

from d3d_tf.reporting import results_table
from d3d_tf.reporting import seeds as seeds_lib

VARIANT_JSON = "variant.json"
PROBE_JSON = os.path.join("probe", "probe.json")
PROBE_ENDPOINT = "Mixed_3c"
# Table column -> results_table model name; probe column -> probe.json model name.
MODELS = (("RGB", "RGB"), ("D3D", "D3D"), ("flow", "flow"),
          ("two-stream", "two-stream (RGB + flow)"))
PROBE_ARMS = (("RGB", "rgb"), ("D3D", "d3d"), ("flow", "flow"), ("random", "random_init"))
DEFAULT_NAME = "fair test"


def _read_json(path: str) -> Optional[Dict]:
  if not os.path.isfile(path):
    return None
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _probe(probe: Optional[Dict], endpoint: str = PROBE_ENDPOINT) -> Dict[str, Optional[float]]:
  """EPE at `endpoint` per arm (None: that arm or the whole probe was not run)."""
  probe = probe or {}
  return {arm: probe.get(name, {}).get(endpoint, {}).get("epe") for arm, name in PROBE_ARMS}


def from_root(root: str) -> Dict:
  """The row of one reproduce.sh root: its seed runs, its variant.json, its probe."""
  seed_dirs = sorted(glob.glob(os.path.join(root, "seed_*")))
  if not seed_dirs:
    raise FileNotFoundError(f"--variant_roots: {root} has no seed_* run directories (run "
                            "scripts/reproduce.sh with ROOT set to it first).")
  summary = seeds_lib.aggregate([results_table.collect(d) for d in seed_dirs])
  meta = _read_json(os.path.join(root, VARIANT_JSON)) or {}
  probe_path = os.path.join(root, PROBE_JSON)
  probe = _read_json(probe_path)
  return dict(name=meta.get("name", DEFAULT_NAME),
              data=meta.get("data_flagfile", "configs/synthetic_data.flags"),
              source=f"`{root}` ({len(seed_dirs)} seed runs"
                     + (f"; probe: `{probe_path}`" if probe else "") + ")",
              command=meta.get("command", ""),
              top1={column: summary["models"][name]["top1"] for column, name in MODELS},
              difference=summary["d3d_minus_rgb_top1"], probe=_probe(probe))


def from_file(path: str) -> Dict:
  """The row of transcribed runs: {name, data, source, top1: {model: [per seed] or {mean,
  std}}, probe?}; the per-seed D3D and RGB lists are paired by position; a probe arm's `epe`
  is one seed's value or a per-seed list."""
  spec = _read_json(path)
  if spec is None:
    raise FileNotFoundError(f"--variant_roots: {path} does not exist.")
  missing = [k for k in ("name", "source", "top1") if k not in spec]
  missing += [f"top1.{k}" for k in ("RGB", "D3D") if k not in spec.get("top1", {})]
  if missing:
    raise ValueError(f"--variant_roots: {path} lacks {', '.join(missing)}.")
  top1 = {}
  for column, _ in MODELS:
    given = spec["top1"].get(column)
    if isinstance(given, list):
      top1[column] = seeds_lib.stats(given)
    elif given:  # Only a summary survives: mean and sd, no per-seed values.
      top1[column] = dict(mean=given["mean"], std=given["std"], values=[])
  rgb, d3d = spec["top1"]["RGB"], spec["top1"]["D3D"]
  if len(rgb) != len(d3d):
    raise ValueError(f"{path}: RGB and D3D need one top-1 per seed each, paired by seed.")
  return dict(name=spec["name"], data=spec.get("data", ""), source=spec["source"],
              command=spec.get("command", ""), top1=top1,
              difference=seeds_lib.stats([d - r for d, r in zip(d3d, rgb)]),
              probe=_probe(spec.get("probe")))


def transcribe(root: str, data: str, source: str) -> Dict:
  """A reproduce.sh root as a `from_file` spec (per-seed test top-1 and the probe), for runs
  whose directories are not kept in git: the committed file then gives the root's row."""
  seed_dirs = sorted(glob.glob(os.path.join(root, "seed_*")))
  if not seed_dirs:
    raise FileNotFoundError(f"{root} has no seed_* run directories.")
  summary = seeds_lib.aggregate([results_table.collect(d) for d in seed_dirs])
  meta = _read_json(os.path.join(root, VARIANT_JSON)) or {}
  spec = dict(name=meta.get("name", DEFAULT_NAME), data=data, source=source,
              command=meta.get("command", ""),
              seeds=[os.path.basename(d) for d in seed_dirs],
              top1={column: [round(v, 4) for v in summary["models"][name]["top1"]["values"]]
                    for column, name in MODELS})
  probe = _read_json(os.path.join(root, PROBE_JSON))
  if probe:
    spec["probe"] = {name: {PROBE_ENDPOINT: probe[name][PROBE_ENDPOINT]}
                     for _, name in PROBE_ARMS if PROBE_ENDPOINT in probe.get(name, {})}
  return spec


def collect(entries: List[str]) -> List[Dict]:
  """One row per entry: a reproduce.sh root (a directory) or a transcribed-runs .json file."""
  return [from_file(e) if e.endswith(".json") else from_root(e) for e in entries]


def _pm(values: Optional[Dict]) -> str:
  if not values:
    return "not run"
  std = values["std"]
  return f"{100 * values['mean']:.1f}" + (f" ± {100 * std:.1f}" if std == std else "")


def _difference(values: Dict) -> str:
  low, high = seeds_lib.t_interval(values)
  if low != low:
    return f"{100 * values['mean']:+.1f} (one seed: no interval)"
  return f"{100 * values['mean']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def epe_summary(epe) -> Optional[Tuple[float, float, int]]:
  """(mean, sd, seeds) of one probe arm's EPE, given as one seed's float or a per-seed list;
  sd is 0 for one seed; None: not run."""
  if epe is None:
    return None
  values = epe if isinstance(epe, list) else [epe]
  if len(values) == 1:
    return float(values[0]), 0.0, 1
  stats = seeds_lib.stats(values)
  return stats["mean"], stats["std"], len(values)


def _epe_cell(epe) -> str:
  summary = epe_summary(epe)
  if summary is None:
    return "not run"
  mean, std, n = summary
  return f"{mean:.3f}" if n == 1 else f"{mean:.3f} ± {std:.3f} ({n} seeds)"


def _epe(probe: Dict) -> str:
  if all(v is None for v in probe.values()):
    return "not run"
  return " / ".join(_epe_cell(probe[arm]) for arm, _ in PROBE_ARMS)


def finding(row: Dict) -> str:
  """Whether D3D beats RGB on this variant beyond seed noise, in one clause."""
  low, high = seeds_lib.t_interval(row["difference"])
  n = len(row["difference"]["values"])
  if low > 0:
    return f"D3D beats RGB beyond seed noise ({n} seeds)"
  if high < 0:
    return f"D3D is below RGB beyond seed noise ({n} seeds)"
  return f"D3D is not shown to differ from RGB ({n} seeds; the interval includes 0)"


def table(rows: List[Dict]) -> str:
  """The section's table: one row per variant."""
  lines = ["| variant | seeds | RGB | D3D | flow | two-stream | D3D - RGB [95% t-interval] | "
           "probe EPE at Mixed_3c: RGB / D3D / flow / random |",
           "|---|---|---|---|---|---|---|---|"]
  for row in rows:
    cells = [row["name"], str(len(row["difference"]["values"]))]
    cells += [_pm(row["top1"].get(column)) for column, _ in MODELS]
    cells += [_difference(row["difference"]), _epe(row["probe"])]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def section(rows: List[Dict], command: str = "", figure: str = "") -> List[str]:
  """Markdown lines of the section (without its heading); `command`: the one that wrote only
  this section into an existing report (`--variants_only`); `figure`: the path, relative to
  the report, of its `plots.variant_gains` picture."""
  if not rows:
    return ["_No variant runs: `DATA_FLAGFILE=configs/synthetic_shortcut_data.flags "
            "ROOT=runs/shortcut bash scripts/reproduce.sh`, then `--variant_roots`._", ""]
  out = ["Top-1 % on each variant's test split (mean ± sd over seeds); D3D - RGB is paired by "
         "seed, in points. Probe EPE: held-out end-point error (pixels) of a linear decoder of "
         "optical flow from the frozen Mixed_3c features of one seed's networks, or mean ± sd "
         "where several seeds were probed (lower: more motion in the features). Design and "
         "predictions: [BENCHMARK.md](BENCHMARK.md), section \"When does D3D help?\"."
         + (f" This section was regenerated on its own by `{command}`." if command else ""),
         "", table(rows), ""]
  if figure:
    out += [f"![D3D - RGB and the motion probe per variant]({figure})", ""]
  for row in rows:
    out.append(f"- **{row['name']}** (`{row['data']}`): {finding(row)}. From {row['source']}."
               + (f" Command: `{row['command']}`." if row["command"] else ""))
  wins = [r["name"] for r in rows if seeds_lib.t_interval(r["difference"])[0] > 0]
  out += ["", (f"D3D beats RGB beyond seed noise on: {', '.join(wins)}." if wins else
               "No variant shows D3D beating RGB beyond seed noise.")
          + " Which predictions held and which failed, per variant: [BENCHMARK.md]"
          "(BENCHMARK.md), \"When does D3D help?\"."]
  return out + [""]


HEADING = "When does D3D help?"
_HEADING_RE = re.compile(r"^## (\d+)\. (.*)$")


def splice(report: str, lines: List[str], before: str = "The paper's numbers") -> str:
  """`report` with its "When does D3D help?" section replaced by `lines`, or inserted before
  the section titled `before...` (the sections after it renumbered), the rest untouched."""
  old = report.rstrip("\n").split("\n")
  heads = [(i, _HEADING_RE.match(line)) for i, line in enumerate(old)]
  heads = [(i, m) for i, m in heads if m]
  mine = [(i, m) for i, m in heads if m.group(2) == HEADING]
  if mine:
    start = mine[0][0]
    ends = [i for i, _ in heads if i > start]
    end = ends[0] if ends else len(old)
    new = old[:start + 1] + [""] + lines + old[end:]
  else:
    after = [(i, m) for i, m in heads if m.group(2).startswith(before)]
    if not after:
      raise ValueError(f"The report has no section titled '{before}...' to put "
                       f"'{HEADING}' before.")
    start, match = after[0]
    number = int(match.group(1))
    tail = [_renumber(line) if i >= start else line for i, line in enumerate(old)]
    new = (tail[:start] + [f"## {number}. {HEADING}", ""] + lines + tail[start:])
  return "\n".join(new).rstrip("\n") + "\n"


def _renumber(line: str) -> str:
  match = _HEADING_RE.match(line)
  return f"## {int(match.group(1)) + 1}. {match.group(2)}" if match else line
