"""The converter end to end: real clips, bad files, flags, label maps, flow content."""

import csv
import dataclasses
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from d3d_tf.data import label_map as label_map_lib
from d3d_tf.video import optical_flow
from d3d_tf.video import video_io
from tfrecords_tools import convert_lib
from tfrecords_tools import flow as flow_lib
from tfrecords_tools import layouts


def _link(src, dst):
  os.makedirs(os.path.dirname(dst), exist_ok=True)
  os.symlink(src, dst)
  return str(dst)


def _audio_only(path):
  import av  # pylint: disable=g-import-not-at-top
  with av.open(str(path), "w") as container:
    stream = container.add_stream("aac", rate=16000)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                       layout="mono")
    frame.sample_rate, frame.pts = 16000, 0
    for packet in list(stream.encode(frame)) + list(stream.encode()):
      container.mux(packet)


@pytest.fixture
def mixed_folder(tmp_path, sample_clips):
  """Three good clips in two classes, and four bad files in a third class."""
  root = tmp_path / "videos"
  _link(sample_clips["bikes"], root / "cycling" / "bikes.mp4")
  _link(sample_clips["carphone"], root / "phoning" / "carphone.mp4")
  _link(sample_clips["bunny"], root / "phoning" / "bunny.mp4")
  bad = root / "broken"
  bad.mkdir()
  data = bytearray(open(sample_clips["bikes"], "rb").read())
  moov = data.find(b"moov")
  data[moov - 4:] = os.urandom(len(data) - moov + 4)  # Garbled index: nothing to decode.
  (bad / "corrupt.mp4").write_bytes(bytes(data))
  (bad / "empty.mp4").write_bytes(b"")
  (bad / "text.mp4").write_text("this is not a video\n" * 50)
  _audio_only(bad / "audio.mp4")
  return root


def test_cli_converts_real_clips_with_dis_and_lists_bad_files(
    tmp_path, mixed_folder, run_cli, read_records):
  out = tmp_path / "out"
  result = run_cli("tfrecords_tools.build_tfrecords", f"--input={mixed_folder}",
                   f"--output_dir={out}", "--flow=dis", "--short_side=64", "--max_frames=6",
                   "--workers=2", "--flow_timing")
  assert result.returncode == 0, result.stderr
  assert sorted(os.listdir(out)) == [".converter", "failures.csv", "label_map.txt",
                                     "summary.json", "train-00000-of-00001.tfrecord"]
  assert label_map_lib.read_label_map(str(out / "label_map.txt")) == [
      "broken", "cycling", "phoning"]
  with open(out / "failures.csv", newline="") as f:
    failures = {os.path.basename(row["path"]): row["reason"] for row in csv.DictReader(f)}
  assert sorted(failures) == ["audio.mp4", "corrupt.mp4", "empty.mp4", "text.mp4"]
  assert "no video stream" in failures["audio.mp4"]
  assert "empty" in failures["empty.mp4"]
  summary = json.loads((out / "summary.json").read_text())
  assert (summary["converted"], summary["failed"], summary["flow"]) == (3, 4, "dis")
  assert summary["videos_per_second"] > 0 and summary["frame_pairs"] == 15

  records = {r.context["video/id"]: r for r in read_records(str(out))}
  assert sorted(records) == ["cycling/bikes", "phoning/bunny", "phoning/carphone"]
  bikes = records["cycling/bikes"]
  assert bikes.context["video/label/index"] == 1
  assert bikes.context["video/num_frames"] == 6
  assert (bikes.context["video/height"], bikes.context["video/width"]) == (64, 150)
  assert bikes.frames.shape == (6, 64, 150, 3) and bikes.flow.shape == (5, 64, 150, 2)
  assert bikes.context["flow/seconds"] > 0
  assert records["phoning/carphone"].frames.shape == (6, 64, 78, 3)  # 176x144, even sizes.
  # The JPEG frames are the decoded frames, and the flow is DIS flow of those frames.
  frames, _ = video_io.read_video(mixed_folder / "cycling" / "bikes.mp4", short_side=64,
                                  max_frames=6)
  assert np.abs(bikes.frames.astype(int) - frames).mean() < 3
  threads = cv2.getNumThreads()
  cv2.setNumThreads(1)
  try:
    expected = flow_lib.quantize_flow(optical_flow.compute_flow(frames, "dis"), 20.0)
  finally:
    cv2.setNumThreads(threads)
  np.testing.assert_array_equal(bikes.flow, expected)


def test_tvl1_flow_follows_the_motion_in_the_clip(tmp_path, sample_clips, read_records):
  root = tmp_path / "videos"
  _link(sample_clips["bikes"], root / "cycling" / "bikes.mp4")
  dataset = layouts.parse_folder(str(root))
  options = convert_lib.EncodeOptions(short_side=64, max_frames=3, flow="tvl1")
  summary = convert_lib.convert(dataset, str(tmp_path / "out"), options, show_progress=False)
  assert summary["converted"] == 1 and summary["flow"] == "tvl1"
  (record,) = read_records(str(tmp_path / "out"))
  assert record.context["flow/algorithm"] == "tvl1"
  assert record.flow.shape == (2, 64, 150, 2)
  # Warping frame 1 back by the decoded flow matches frame 0 better than frame 1 does.
  flow = (record.flow.astype(np.float32) * (40.0 / 255) - 20.0)[0]
  gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in record.frames[:2]]
  grid_y, grid_x = np.mgrid[0:64, 0:150].astype(np.float32)
  warped = cv2.remap(gray[1], grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR)
  inner = (slice(8, -8), slice(8, -8))
  assert np.abs(warped - gray[0])[inner].mean() < 0.8 * np.abs(gray[1] - gray[0])[inner].mean()


def test_label_map_is_shared_across_splits(tmp_path, sample_clips, read_records):
  video_dir = tmp_path / "videos"
  rows = ["label,youtube_id,time_start,time_end,split"]
  # "zumba" appears only in val, "archery" only in train: indices must still agree.
  for label, vid, split in [("archery", "a", "train"), ("juggling", "b", "train"),
                            ("juggling", "c", "validate"), ("zumba", "d", "validate")]:
    _link(sample_clips["carphone"], video_dir / layouts.kinetics_filename(vid, 0, 10))
    rows.append(f"{label},{vid},0,10,{split}")
  csv_path = tmp_path / "k.csv"
  csv_path.write_text("\n".join(rows) + "\n")
  out = tmp_path / "out"
  options = convert_lib.EncodeOptions(short_side=32, max_frames=2, flow="none")
  dataset = layouts.load_dataset("kinetics", str(csv_path), video_dir=str(video_dir))
  convert_lib.convert(dataset, str(out), options, show_progress=False)
  names = label_map_lib.read_label_map(str(out / "label_map.txt"))
  assert names == ["archery", "juggling", "zumba"]
  assert sorted(os.path.basename(p) for p in os.listdir(out) if p.endswith(".tfrecord")) == [
      "train-00000-of-00001.tfrecord", "val-00000-of-00001.tfrecord"]
  for record in read_records(str(out)):
    assert names[record.context["video/label/index"]] == record.context["video/label/name"]
    assert record.flow is None and record.context["flow/algorithm"] == "none"

  # Converting val alone later with train's label map keeps the same indices.
  val_only = layouts.load_dataset("kinetics", str(csv_path), video_dir=str(video_dir),
                                  label_map=["juggling", "zumba"], splits=["val"])
  summary = convert_lib.convert(val_only, str(tmp_path / "val_out"), options,
                                show_progress=False)
  labels = {r.context["video/id"]: r.context["video/label/index"]
            for r in read_records(str(tmp_path / "val_out"))}
  assert labels == {"c_000000_000010": 0, "d_000000_000010": 1}
  assert summary["failed"] == 0


def test_splits_converted_one_at_a_time_share_the_folder_and_summary(tmp_path, sample_clips):
  root = tmp_path / "videos"
  _link(sample_clips["carphone"], root / "train" / "a" / "1.mp4")
  _link(sample_clips["carphone"], root / "train" / "b" / "2.mp4")
  _link(sample_clips["carphone"], root / "val" / "b" / "3.mp4")
  (root / "val" / "b" / "4.mp4").write_bytes(b"")
  out = str(tmp_path / "out")
  options = convert_lib.EncodeOptions(short_side=32, max_frames=2, flow="none")
  for split in ("train", "val"):
    dataset = layouts.load_dataset("folder", str(root), splits=[split])
    summary = convert_lib.convert(dataset, out, options, show_progress=False)
  assert summary["splits"] == {
      "train": {"videos": 2, "converted": 2, "failed": 0, "shards": 1},
      "val": {"videos": 2, "converted": 1, "failed": 1, "shards": 1}}
  assert (summary["converted"], summary["failed"], summary["videos_this_run"]) == (3, 1, 2)
  with open(os.path.join(out, "failures.csv"), newline="") as f:
    assert [row["path"] for row in csv.DictReader(f)] == [str(root / "val" / "b" / "4.mp4")]


def test_rerun_with_other_settings_is_refused(tmp_path, sample_clips):
  root = tmp_path / "videos"
  _link(sample_clips["carphone"], root / "a" / "c.mp4")
  dataset = layouts.parse_folder(str(root))
  out = str(tmp_path / "out")
  convert_lib.convert(dataset, out, convert_lib.EncodeOptions(short_side=32, max_frames=2,
                                                             flow="none"), show_progress=False)
  with pytest.raises(convert_lib.SettingsMismatchError, match=r"short_side: 32 -> 48"):
    convert_lib.convert(dataset, out, convert_lib.EncodeOptions(short_side=48, max_frames=2,
                                                               flow="none"),
                        show_progress=False)


def test_jpeg_flow_planes_and_resuming_a_run_from_before_the_flag(tmp_path, sample_clips,
                                                                  read_records):
  root = tmp_path / "videos"
  _link(sample_clips["bikes"], root / "cycling" / "bikes.mp4")
  dataset = layouts.parse_folder(str(root))
  flows = {}
  for flow_format in ("png", "jpeg"):
    out = str(tmp_path / flow_format)
    options = convert_lib.EncodeOptions(short_side=64, max_frames=4, flow="dis",
                                        flow_format=flow_format)
    convert_lib.convert(dataset, out, options, show_progress=False)
    (record,) = read_records(out)
    assert record.context["flow/format"] == flow_format
    flows[flow_format] = record.flow
  jpeg = str(tmp_path / "jpeg")
  (shard,) = [n for n in os.listdir(jpeg) if n.endswith(".tfrecord")]
  assert b"\xff\xd8\xff" in open(os.path.join(jpeg, shard), "rb").read()  # JPEG planes.
  error = np.abs(flows["jpeg"].astype(int) - flows["png"])
  assert error.mean() < 1.0 and error.max() <= 24, (error.mean(), error.max())
  # A folder converted before --flow_format existed records neither key: it was PNG, and a
  # rerun with the defaults resumes it instead of refusing.
  png = str(tmp_path / "png")
  settings_path = os.path.join(png, convert_lib.STATE_DIR, "settings.json")
  with open(settings_path) as f:
    settings = json.load(f)
  for key in ("flow_format", "flow_jpeg_quality"):
    del settings[key]
  with open(settings_path, "w") as f:
    json.dump(settings, f)
  options = convert_lib.EncodeOptions(short_side=64, max_frames=4, flow="dis")
  assert convert_lib.convert(dataset, png, options, show_progress=False)["converted"] == 1
  with pytest.raises(convert_lib.SettingsMismatchError, match=r"flow_format: 'png' -> 'jpeg'"):
    convert_lib.convert(dataset, png, dataclasses.replace(options, flow_format="jpeg"),
                        show_progress=False)


def test_shard_plan_is_deterministic_and_balanced():
  items = [layouts.VideoItem(f"/v/{i}.mp4", "a", "train", f"v{i}") for i in range(10)]
  dataset = layouts.Dataset(items, ["a"])
  plans = convert_lib.plan_shards(dataset, num_shards=3)
  assert [plan.name for plan in plans] == [
      "train-00000-of-00003.tfrecord", "train-00001-of-00003.tfrecord",
      "train-00002-of-00003.tfrecord"]
  assert [len(plan.items) for plan in plans] == [3, 3, 4]
  shuffled = layouts.Dataset(items[::-1], ["a"])
  assert convert_lib.plan_shards(shuffled, num_shards=3) == plans
  assert len(convert_lib.plan_shards(dataset, num_shards=50)) == 10  # Never an empty shard.


@pytest.mark.parametrize("args, flag", [
    (["--short_side=255"], "--short_side"),
    (["--flow=raft"], "--flow"),
    (["--split_index=4"], "--split_index"),
    (["--shortside=64"], "shortside"),
    (["--layout=ucf101"], "--video_dir"),
    (["--input=/does/not/exist"], "--input"),
])
def test_bad_flag_exits_2_with_one_line_naming_it(tmp_path, mixed_folder, run_cli, args, flag):
  base = [f"--input={mixed_folder}", f"--output_dir={tmp_path / 'out'}"]
  result = run_cli("tfrecords_tools.build_tfrecords", *(base + args), timeout=60)
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert flag in lines[0]
  assert not (tmp_path / "out").exists()


def test_exit_status_is_1_when_nothing_converts(tmp_path, run_cli):
  (tmp_path / "videos" / "a").mkdir(parents=True)
  (tmp_path / "videos" / "a" / "empty.mp4").write_bytes(b"")
  out = tmp_path / "out"
  result = run_cli("tfrecords_tools.build_tfrecords", f"--input={tmp_path / 'videos'}",
                   f"--output_dir={out}", "--workers=1")
  assert result.returncode == 1, result.stderr
  assert json.loads((out / "summary.json").read_text())["converted"] == 0


def test_workers_do_not_import_tensorflow():
  # Workers import convert_lib to run encode_video; TensorFlow there would cost seconds and
  # hundreds of MB per worker.
  code = ("import sys; import tfrecords_tools.convert_lib, tfrecords_tools.synthetic; "
          "sys.exit('tensorflow' in sys.modules)")
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True,
                          env=dict(os.environ, PYTHONPATH=repo), timeout=60)
  assert result.returncode == 0, result.stderr


def _crash_on_bad(task):
  """Stands in for a decoder that segfaults on one file (runs in a worker process)."""
  if task.item.path.endswith("crash.mp4"):
    os._exit(1)
  return convert_lib.Failure(task.item.path, "ok")


def test_a_worker_crash_fails_only_its_video():
  names = ["a.mp4", "crash.mp4", "b.mp4", "c.mp4", "d.mp4"]
  options = convert_lib.EncodeOptions(flow="none")
  tasks = [convert_lib.Task(layouts.VideoItem(f"/v/{name}", "x", "train", name), 0, options)
           for name in names]
  results = list(convert_lib.encode_in_order(tasks, workers=2, encode=_crash_on_bad))
  assert [os.path.basename(r.path) for r in results] == names
  assert [r.reason for r in results] == [
      "ok", "the decoder crashed (worker process died)", "ok", "ok", "ok"]
