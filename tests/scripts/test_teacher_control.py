"""scripts/teacher_control.sh (the RGB-teacher control of "When does D3D help?"): per seed an RGB
teacher trained as the seed's flow teacher was, a D3D student distilled from it with the seed's
D3D flags, both evaluated, the motion probe, and a report root that reuses the seed's two-stream
evaluation; finished runs are kept on a rerun; an unfinished seed is refused."""

import json
import os

from test_quickstart_reruns import (  # pylint: disable=g-bad-import-order
    fake_reproduce_root, run_root_script)


def _run(tmp_path, root, **env):
  return run_root_script(tmp_path, "teacher_control.sh", root, **env)


def test_rgb_teacher_is_the_flow_teachers_recipe_on_rgb(tmp_path):
  root = fake_reproduce_root(tmp_path)
  out = tmp_path / "control"
  result, calls = _run(tmp_path, root, OUT=str(out), TEACHER_STEPS="40")
  assert result.returncode == 0, result.stderr
  trains = [c for c in calls if c.startswith("d3d_tf.train")]
  assert len(trains) == 4
  for seed in (1, 2):
    src, dst = f"{root}/seed_{seed}", f"{out}/seed_{seed}"
    teacher = next(c for c in trains if f"--model_dir={dst}/rgb_teacher " in c + " ")
    assert f"--flagfile={src}/flow/flags.txt" in teacher and "--stream=rgb" in teacher
    assert "--train_steps=40" in teacher
    student = next(c for c in trains if f"--model_dir={dst}/d3d_rgb_teacher " in c + " ")
    assert f"--flagfile={src}/d3d/flags.txt" in student
    assert f"--teacher={dst}/rgb_teacher" in student and "--same_modality_teacher" in student
    # The report root: the seed's own two-stream evaluation, this student with the flow teacher.
    assert os.path.realpath(f"{dst}/eval/two_stream") == os.path.realpath(
        f"{src}/eval/two_stream")
  evals = [c for c in calls if c.startswith("d3d_tf.evaluate")]
  assert len(evals) == 4
  assert any(f"--models={out}/seed_1/d3d_rgb_teacher/student.keras,{root}/seed_1/flow/"
             f"student.keras" in c and f"--output_dir={out}/seed_1/eval/d3d_flow" in c
             for c in evals)
  assert any(f"--output_dir={out}/seed_2/eval/rgb_teacher" in c for c in evals)
  probes = [c for c in calls if c.startswith("d3d_tf.probe")]
  assert len(probes) == 2
  first = next(c for c in probes if f"--output_dir={out}/seed_1/probe" in c)
  assert (f"--model={root}/seed_1/rgb,{root}/seed_1/d3d,{out}/seed_1/d3d_rgb_teacher,"
          f"{root}/seed_1/flow,{out}/seed_1/rgb_teacher" in first)
  assert "--random_init" in first and "--endpoints=Conv2d_2c_3x3,Mixed_3c" in first
  second = next(c for c in probes if f"--output_dir={out}/seed_2/probe" in c)
  assert "--random_init" not in second and f"{root}/seed_2/flow" not in second
  variant = json.loads((out / "variant.json").read_text())
  assert variant["name"] == "unlabelled with an RGB teacher (control)"
  assert variant["command"] == f"ROOT={root} TEACHER_STEPS=40 bash scripts/teacher_control.sh"

  again, calls = _run(tmp_path, root, OUT=str(out), TEACHER_STEPS="40")
  assert again.returncode == 0, again.stderr
  assert not calls
  assert f"kept: {out}/seed_2/d3d_rgb_teacher" in again.stdout


def test_unfinished_seed_is_refused_before_any_training(tmp_path):
  root = fake_reproduce_root(tmp_path)
  (root / "seed_2" / "eval" / "two_stream" / "report.json").unlink()
  result, calls = _run(tmp_path, root)
  assert result.returncode == 2 and not calls
  assert f"{root}/seed_2/eval/two_stream/report.json is missing" in result.stderr
