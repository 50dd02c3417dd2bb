"""`python -m tfrecords_tools.inspect`: metadata on stdout and a contact sheet PNG."""

import os

import cv2

from tfrecords_tools import convert_lib
from tfrecords_tools import layouts


def test_inspect_prints_metadata_and_writes_frames_over_flow(tmp_path, sample_clips, run_cli):
  (tmp_path / "videos" / "cycling").mkdir(parents=True)
  os.symlink(sample_clips["bikes"], tmp_path / "videos" / "cycling" / "bikes.mp4")
  options = convert_lib.EncodeOptions(short_side=64, max_frames=10, flow="dis")
  convert_lib.convert(layouts.parse_folder(str(tmp_path / "videos")), str(tmp_path / "out"),
                      options, show_progress=False)
  shard = tmp_path / "out" / "train-00000-of-00001.tfrecord"
  sheet_path = tmp_path / "sheet.png"

  result = run_cli("tfrecords_tools.inspect", shard, "--index=0", f"--output={sheet_path}",
                   "--num_frames=4", "--tile_height=64")
  assert result.returncode == 0, result.stderr
  assert "record 0 of 1" in result.stdout
  assert "video/id: cycling/bikes" in result.stdout
  assert "flow/algorithm: dis" in result.stdout
  assert "rgb/encoded: 10 items" in result.stdout and "flow/x/encoded: 9 items" in result.stdout
  sheet = cv2.imread(str(sheet_path))
  # A title strip, then two rows (frames, flow) of 4 tiles 64x150, 2-pixel gaps, and a 64x64
  # colour-wheel key beside the flow row.
  # (tfrecords_tools.inspect is not imported here: its absl flags would clash with others.)
  header, grid = 20, 4 * 150 + 3 * 2
  assert sheet.shape == (header + 2 * 64 + 2, grid + 2 + 64, 3)
  flow_row = sheet[header + 66:, :grid, :]
  assert flow_row.std() > 5  # The flow row is a picture, not a blank strip.
  key = sheet[header + 66:, grid + 2:, :].astype(int)
  # The wheel's left and right edges (opposite directions) have different colours.
  assert abs(key[32, 4] - key[32, 59]).sum() > 100
  assert (sheet[:header] < 200).any()  # The title is written.
