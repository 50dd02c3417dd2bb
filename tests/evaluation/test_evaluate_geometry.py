"""Evaluate reads the clip geometry and class names the models store: no flags to retype."""

import json
import os
import subprocess
import sys

import pytest

from d3d_tf.data import label_map as label_map_lib
from d3d_tf.evaluation import evaluate_lib
from d3d_tf.models import ClipGeometry, S3DGBackbone, S3DGClassifier
from tests.data import records_fixture as rf
from tests.evaluation.test_evaluate_ensemble import _record

LABELS = ("c0", "c1", "c2")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
  root = tmp_path_factory.mktemp("geometry")
  files = str(root / "val.tfrecord")
  rf.write_records(files, [_record(k) for k in range(3)])
  paths = {}
  for name, channels, extra in (("rgb", 3, {}), ("flow", 2, {"flow_bound": 20.0, "flow_algorithm": "synthetic", "flow_format": "png"})):
    geometry = ClipGeometry(num_frames=8, crop_size=32, modality=name, labels=LABELS, **extra)
    backbone = S3DGBackbone(input_channels=channels, depth_multiplier=0.125,
                            final_endpoint="Mixed_3c")
    model = S3DGClassifier(backbone, 3, clip_geometry=geometry)
    paths[name] = str(root / f"{name}.keras")
    model.save(paths[name])
  plain = S3DGClassifier(S3DGBackbone(depth_multiplier=0.125, final_endpoint="Mixed_3c"), 3)
  paths["plain"] = str(root / "sub" / "plain.keras")
  os.makedirs(os.path.dirname(paths["plain"]))
  plain.save(paths["plain"])
  label_map_lib.write_label_map(str(root / "label_map.txt"), list(LABELS))
  return dict(root=root, files=files, **paths)


def _scores(result):
  return [(r["model"], r["top1"], r["mean_per_class"]) for r in result["rows"]]


@pytest.mark.slow
def test_no_geometry_flags_give_the_numbers_of_the_flags_retyped(models):
  members = [models["rgb"], models["flow"]]
  stored = evaluate_lib.evaluate(evaluate_lib.EvalConfig(
      models=members, eval_files=models["files"], output_dir=str(models["root"] / "a"),
      num_clips=2))
  retyped = evaluate_lib.evaluate(evaluate_lib.EvalConfig(
      models=members, eval_files=models["files"], output_dir=str(models["root"] / "b"),
      label_map=str(models["root"] / "label_map.txt"), num_clips=2, num_frames=8, stride=1,
      crop_size=32, crop_fraction=0.875))
  assert stored["protocol"]["num_frames"] == 8 and stored["protocol"]["crop_size"] == 32
  assert stored["geometry_notes"] == [] and "labels stored in" in stored["labels_from"]
  assert _scores(stored) == _scores(retyped)
  with open(models["root"] / "a" / "predictions.csv") as a, \
       open(models["root"] / "b" / "predictions.csv") as b:
    assert a.read() == b.read()
  # A longer window is a meaningful override, echoed; another stride is refused.
  longer = evaluate_lib.evaluate(evaluate_lib.EvalConfig(
      models=(models["rgb"],), eval_files=models["files"], output_dir=str(models["root"] / "c"),
      num_clips=1, num_frames=10))
  assert longer["protocol"]["num_frames"] == 10
  assert "--num_frames=10 overrides num_frames=8" in longer["geometry_notes"][0]
  with pytest.raises(ValueError, match="--stride=2 contradicts"):
    evaluate_lib.evaluate(evaluate_lib.EvalConfig(
        models=(models["rgb"],), eval_files=models["files"],
        output_dir=str(models["root"] / "d"), stride=2))


def _cli(argv):
  """`python -m d3d_tf.evaluate` in a subprocess: its flags would clash with `d3d_tf.predict`'s
  in pytest's one process."""
  return subprocess.run([sys.executable, "-m", "d3d_tf.evaluate"] + argv, capture_output=True,
                        text=True, check=False, timeout=300,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


@pytest.mark.slow
def test_cli_echoes_the_geometry_and_asks_for_flags_when_unknown(models):
  out_dir = str(models["root"] / "cli")
  out = _cli([f"--models={models['rgb']}", f"--eval_files={models['files']}",
              f"--output_dir={out_dir}", "--num_clips=1", "--crop_size=40"])
  assert out.returncode == 0, out.stderr[-2000:]
  assert "Clips: num_frames=8 stride=1 crop_size=40 crop_fraction=0.875" in out.stdout
  assert "note: --crop_size=40 overrides crop_size=32" in out.stdout
  with open(os.path.join(out_dir, "report.json")) as f:
    assert json.load(f)["protocol"]["crop_size"] == 40
  out = _cli([f"--models={models['plain']}", f"--eval_files={models['files']}",
              f"--output_dir={out_dir}"])
  assert out.returncode == 2
  lines = [l for l in out.stderr.strip().splitlines() if l.startswith("evaluate:")]
  assert len(lines) == 1 and "does not record the clip geometry" in lines[0]
  assert "pass --num_frames and --crop_size" in lines[0]
