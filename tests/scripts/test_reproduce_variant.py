"""scripts/reproduce.sh runs a benchmark variant: its data flagfile, the configs'
steps when STEPS is empty, one stream's extra flags, variant.json; docs/ is left alone."""

import json
import os
import subprocess
import sys

from test_quickstart_reruns import FAKE_PYTHON, REPO  # pylint: disable=g-bad-import-order


def test_variant_run_uses_its_flagfile_and_per_stream_flags(tmp_path):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  fake = bin_dir / "python"
  fake.write_text(FAKE_PYTHON.format(real=sys.executable))
  fake.chmod(0o755)
  log, root = tmp_path / "calls.log", tmp_path / "shortcut"
  log.write_text("")
  env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_LOG=str(log),
             DATA_FLAGFILE="configs/synthetic_shortcut_data.flags", ROOT=str(root),
             SEEDS="1 2", STEPS="", TRAIN_PER_CLASS="", DATA_SEED="",
             RGB_TRAIN_FLAGS="--train_steps=30 --checkpoint_every=10")
  result = subprocess.run(["bash", os.path.join(REPO, "scripts", "reproduce.sh")], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 0, result.stderr
  calls = log.read_text().splitlines()
  data = [c for c in calls if c.startswith("tfrecords_tools.make_synthetic")]
  assert len(data) == 1 and "--flagfile=configs/synthetic_shortcut_data.flags" in data[0]
  assert "--train_per_class" not in data[0] and "--seed=" not in data[0]
  trains = [c for c in calls if c.startswith("d3d_tf.train")]
  assert len(trains) == 6 and not any("--train_steps=4000" in c for c in trains)
  assert [("--train_steps=30" in c) for c in trains[:3]] == [False, True, False]
  assert not any(c.startswith("d3d_tf.report") and "--output" in c for c in calls)
  variant = json.loads((root / "variant.json").read_text())
  assert variant["name"] == "shortcut"
  assert "RGB_TRAIN_FLAGS='--train_steps=30 --checkpoint_every=10'" in variant["command"]
  assert json.loads((root / "timing.json").read_text())["command"] == variant["command"]
  assert "--variant_roots=runs/reproduce," in result.stdout


def test_unlabelled_variant_gives_each_stream_its_clips(tmp_path):
  """With an unlabelled split the teacher trains on it with labels, D3D without, RGB not."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  fake = bin_dir / "python"
  # The stand-in make_synthetic writes an unlabelled shard when its flagfile asks for one.
  fake.write_text(FAKE_PYTHON.format(real=sys.executable).replace(
      'touch "$d/records/test-00000-of-00001.tfrecord" ;;',
      'touch "$d/records/test-00000-of-00001.tfrecord"\n'
      '    case "$*" in *unlabelled*) touch "$d/records/unlabelled-00000-of-00001.tfrecord";; '
      'esac ;;'))
  fake.chmod(0o755)
  log, root = tmp_path / "calls.log", tmp_path / "unlabelled"
  log.write_text("")
  env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_LOG=str(log),
             DATA_FLAGFILE="configs/synthetic_unlabelled_data.flags", ROOT=str(root),
             SEEDS="1", STEPS="", TRAIN_PER_CLASS="", DATA_SEED="")
  result = subprocess.run(["bash", os.path.join(REPO, "scripts", "reproduce.sh")], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 0, result.stderr
  records = f"{root}/data/records"
  flow, rgb, d3d = [c for c in log.read_text().splitlines() if c.startswith("d3d_tf.train")]
  assert f"--train_files={records}/train-*.tfrecord,{records}/unlabelled-*.tfrecord" in flow
  assert "unlabelled" not in rgb.replace(str(root), "ROOT")
  assert f"--unlabelled_train_files={records}/unlabelled-*.tfrecord" in d3d
  assert f"--train_files={records}/train-*.tfrecord " in d3d
  assert json.loads((root / "variant.json").read_text())["name"] == "unlabelled"
