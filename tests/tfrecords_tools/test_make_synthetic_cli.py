"""make_synthetic's CLI: a test split beside train, and one-line errors for bad flags."""

import glob
import os

from tfrecords_tools import synthetic


def test_test_split_and_motion_flags(run_cli, read_records, tmp_path):
  result = run_cli("tfrecords_tools.make_synthetic", f"--output_dir={tmp_path}",
                   "--train_per_class=1", "--val_per_class=0", "--test_per_class=1",
                   "--size=32", "--min_length=4", "--max_length=4", "--noclutter",
                   "--actor_scale=2", "--speed=2", "--workers=1")
  assert result.returncode == 0, result.stderr[-2000:]
  records = tmp_path / "records"
  assert glob.glob(str(records / "train-*.tfrecord"))
  assert glob.glob(str(records / "test-*.tfrecord"))
  assert not glob.glob(str(records / "val-*.tfrecord"))
  test_clips = read_records(glob.glob(str(records / "test-*.tfrecord"))[0])
  assert len(test_clips) == len(synthetic.CLASSES)
  # The flags reach the renderer: the test clip of class 0 is the spec with speed and scale 2.
  spec = synthetic.ClipSpec(0, "test", 0, 0, size=32, min_length=4, max_length=4,
                            clutter=False, actor_scale=2.0, speed=2.0)
  assert os.path.isfile(synthetic.clip_path(str(tmp_path / "videos"), spec))
  by_id = {clip.context["video/id"]: clip for clip in test_clips}
  rendered = synthetic.render_clip(spec)
  clip = by_id["move_right/move_right_0000"]
  assert clip.frames.shape == rendered.shape
  # mp4 (lossless but 4:2:0) then JPEG: close to the rendered pixels, not equal.
  assert abs(clip.frames.astype(float) - rendered).mean() < 6


def test_bad_speed_is_one_line_naming_the_flag(run_cli, tmp_path):
  result = run_cli("tfrecords_tools.make_synthetic", f"--output_dir={tmp_path}", "--speed=0")
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and "--speed" in lines[0] and "(0, 8]" in lines[0], result.stderr
  assert not os.path.exists(tmp_path / "videos")
