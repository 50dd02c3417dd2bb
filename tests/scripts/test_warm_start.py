"""scripts/warm_start.sh (the warm-start arm of "When does D3D help?"): both arms start from each seed's RGB
baseline with that seed's own flags, are evaluated with the seed's flow teacher, and make a
report root; finished runs are kept on a rerun; an unfinished seed is refused."""

import json

from test_quickstart_reruns import (  # pylint: disable=g-bad-import-order
    fake_reproduce_root, run_root_script)


def _run(tmp_path, root, **env):
  return run_root_script(tmp_path, "warm_start.sh", root, **env)


def test_both_arms_start_from_the_seed_rgb_baseline(tmp_path):
  root = fake_reproduce_root(tmp_path)
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
  root = fake_reproduce_root(tmp_path)
  (root / "seed_2" / "flow" / "student.keras").unlink()
  result, calls = _run(tmp_path, root)
  assert result.returncode == 2 and not calls
  assert f"{root}/seed_2/flow/student.keras is missing" in result.stderr
