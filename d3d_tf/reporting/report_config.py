"""`ReportConfig`: every flag of `d3d_tf.report`, declared once.

`d3d_tf.report` defines its flags from the fields; `reproduction_report.write_report` and
`reproduction_report.write_variants_only` take the config.
"""

import dataclasses
import os
from typing import Optional, Tuple

from d3d_tf.common import config_lib

_flag = config_lib.flag


@dataclasses.dataclass
class ReportConfig(config_lib.CommandConfig):
  """One report; each field is the `d3d_tf.report` flag of the same name."""
  quickstart_dir: str = _flag(
      "runs/synthetic", "Run directory of scripts/quickstart.sh ('': none).")
  seed_dirs: str = _flag(
      "runs/reproduce/seed_*", "Comma-separated globs of run directories that differ only in "
      "their seed (scripts/reproduce.sh).")
  inference_cost: str = _flag(
      "runs/reproduce/inference_cost.jsonl",
      "JSON lines of benchmarks/inference_cost.py ('': leave the section out).")
  variant_roots: Tuple[str, ...] = _flag(
      (), "Comma-separated benchmark variants for the \"When does D3D help?\" section, one row "
      "each: a scripts/reproduce.sh ROOT (seed_*/, variant.json, probe/) or a "
      "docs/variants/*.json of transcribed runs. Empty: the section says none was given.")
  variants_only: bool = _flag(
      False, "Only (re)write the \"When does D3D help?\" section of the existing --output from "
      "--variant_roots, keeping the rest of it as it is (its run directories need not be on "
      "this machine).")
  output: Optional[str] = _flag(
      None, "Report to write; its figures go to figures/ beside it. Default: "
      "<quickstart_dir>/report/REPRODUCTION.md (the committed one is docs/REPRODUCTION.md).")
  force: bool = _flag(
      False, "Replace --output even if it was built from more runs than this report.")
  table_only: bool = _flag(
      False, "Only print the quickstart table and write its results.json.")

  def output_path(self) -> str:
    """--output, else <quickstart_dir>/report/REPRODUCTION.md."""
    if self.output:
      return self.output
    return os.path.join(self.quickstart_dir or "runs", "report", "REPRODUCTION.md")

  def variant_list(self) -> Tuple[str, ...]:
    """--variant_roots without empty entries."""
    return tuple(v.strip() for v in self.variant_roots if v.strip())

  def seed_patterns(self) -> Tuple[str, ...]:
    """--seed_dirs' globs."""
    return tuple(p.strip() for p in self.seed_dirs.split(",") if p.strip())
