"""scripts/warm_start.sh (the warm-start arm of "When does D3D help?"): both arms start from each seed's RGB
baseline with that seed's own flags, are evaluated with the seed's flow teacher, and make a
report root; finished runs are kept on a rerun; an unfinished seed is refused."""

import json
import os
import subprocess
import sys

from test_quickstart_reruns import FAKE_PYTHON, REPO  # pylint: disable=g-bad-import-order

# The stand-in trainer also leaves the student file that marks a finished run.
_FAKE = FAKE_PYTHON.replace('echo {{}} > "$d/final_metrics.json" ;;',
                            'echo {{}} > "$d/final_metrics.json"; touch "$d/student.keras" ;;')


def _root(tmp_path, seeds=(1, 2)):
  root = tmp_path / "unlabelled"
  for seed in seeds:
    for stream in ("rgb", "d3d", "flow"):
      run = root / f"seed_{seed}" / stream
      run.mkdir(parents=True)
      (run / "student.keras").touch()
      (run / "flags.txt").write_text(f"--stream={stream}\n")
  (root / "data" / "records").mkdir(parents=True)
  (root / "data" / "records" / "test-00000-of-00001.tfrecord").touch()
  (root / "variant.json").write_text(json.dumps(
      {"name": "unlabelled", "data_flagfile": "configs/synthetic_unlabelled_data.flags"}))
  return root


def _run(tmp_path, root, **env):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir(exist_ok=True)
  fake = bin_dir / "python"
  fake.write_text(_FAKE.format(real=sys.executable))
  fake.chmod(0o755)
  log = tmp_path / "calls.log"
  log.write_text("")
  result = subprocess.run(
      ["bash", os.path.join(REPO, "scripts", "warm_start.sh")],
      env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_LOG=str(log),
               ROOT=str(root), **env),
      capture_output=True, text=True, timeout=120, check=False)
  return result, log.read_text().splitlines()


def test_both_arms_start_from_the_seed_rgb_baseline(tmp_path):
  root = _root(tmp_path)
  out = tmp_path / "warm"
  result, calls = _run(tmp_path, root, OUT=str(out), STEPS="30")
  assert result.returncode == 0, result.stderr
  trains = [c for c in calls if c.startswith("d3d_tf.train")]
  assert len(trains) == 4
  for seed in (1, 2):
    for stream in ("rgb", "d3d"):
      call = next(c for c in trains if f"--model_dir={out}/seed_{seed}/{stream} " in c + " ")
      assert f"--flagfile={root}/seed_{seed}/{stream}/flags.txt" in call
      assert f"--init_from={root}/seed_{seed}/rgb" in call and "--train_steps=30" in call
  evals = [c for c in calls if c.startswith("d3d_tf.evaluate")]
  assert len(evals) == 4
  assert all(f"{root}/seed_" in c and "/flow/student.keras" in c for c in evals)
  assert any(f"--output_dir={out}/seed_1/eval/d3d_flow" in c and f"{out}/seed_1/d3d/" in c
             for c in evals)
  probe = [c for c in calls if c.startswith("d3d_tf.probe")]
  assert len(probe) == 1
  assert f"--model={out}/seed_1/rgb,{out}/seed_1/d3d,{root}/seed_1/flow" in probe[0]
  variant = json.loads((out / "variant.json").read_text())
  assert variant["name"] == "unlabelled + warm start"
  assert variant["command"] == f"ROOT={root} STEPS=30 bash scripts/warm_start.sh"

  again, calls = _run(tmp_path, root, OUT=str(out), STEPS="30", PROBE="0")
  assert again.returncode == 0, again.stderr
  assert not [c for c in calls if c.startswith(("d3d_tf.train", "d3d_tf.evaluate"))]
  assert f"kept: {out}/seed_2/d3d" in again.stdout


def test_unfinished_seed_is_refused_before_any_training(tmp_path):
  root = _root(tmp_path)
  (root / "seed_2" / "flow" / "student.keras").unlink()
  result, calls = _run(tmp_path, root)
  assert result.returncode == 2 and not calls
  assert f"{root}/seed_2/flow/student.keras is missing" in result.stderr
