"""Each dataset layout parsed from small annotation files written here."""

import os

import pytest

from tfrecords_tools import layouts


def _touch(path):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb"):
    pass
  return str(path)


def _write(path, text):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
  return str(path)


def _by_split(dataset):
  result = {}
  for item in dataset.items:
    result.setdefault(item.split, []).append((item.label, item.video_id))
  return {split: sorted(items) for split, items in result.items()}


def test_folder_layout_without_splits_is_all_train(tmp_path):
  for name in ("walk/a.mp4", "walk/b.avi", "run/c.mp4", "run/notes.txt", ".hidden/d.mp4"):
    _touch(tmp_path / name)
  dataset = layouts.parse_folder(str(tmp_path))
  assert dataset.class_names == ["run", "walk"]
  assert _by_split(dataset) == {
      "train": [("run", "run/c"), ("walk", "walk/a"), ("walk", "walk/b")]}
  assert dataset.items[0].path == str(tmp_path / "run" / "c.mp4")


def test_folder_layout_val_fraction_is_per_class_and_stable(tmp_path):
  for label in ("a", "b"):
    for i in range(10):
      _touch(tmp_path / label / f"{i}.mp4")
  first = _by_split(layouts.parse_folder(str(tmp_path), val_fraction=0.2))
  assert [label for label, _ in first["val"]] == ["a", "a", "b", "b"]
  assert len(first["train"]) == 16
  _touch(tmp_path / "a" / "new.mp4")  # Adding a video does not move the others.
  second = _by_split(layouts.parse_folder(str(tmp_path), val_fraction=0.2))
  assert set(first["val"]) - set(second["val"]) <= {("a", v) for _, v in first["val"]}
  assert [v for label, v in second["val"] if label == "b"] == [
      v for label, v in first["val"] if label == "b"]


def test_folder_layout_with_split_folders(tmp_path):
  _touch(tmp_path / "train" / "jump" / "x.mp4")
  _touch(tmp_path / "train" / "sit" / "y.mp4")
  _touch(tmp_path / "val" / "jump" / "z.mp4")
  dataset = layouts.parse_folder(str(tmp_path))
  assert dataset.class_names == ["jump", "sit"]
  assert _by_split(dataset) == {"train": [("jump", "jump/x"), ("sit", "sit/y")],
                                "val": [("jump", "jump/z")]}
  with pytest.raises(layouts.LayoutError, match="split folders"):
    layouts.parse_folder(str(tmp_path), val_fraction=0.1)


def test_folder_layout_without_videos_is_an_error(tmp_path):
  _touch(tmp_path / "walk" / "readme.txt")
  with pytest.raises(layouts.LayoutError, match="No videos"):
    layouts.parse_folder(str(tmp_path))


def test_kinetics_csv(tmp_path):
  csv_path = _write(tmp_path / "k.csv", (
      "label,youtube_id,time_start,time_end,split,is_cc\n"
      "abseiling,aaa,14,24,train,0\n"
      '"air drumming",bbb,0.0,10.0,validate,0\n'
      "abseiling,ccc,1,11,test,0\n"
      ",ddd,5,15,test,0\n"
      "abseiling,eee,5,15,bogus,0\n"
      "abseiling,aaa,14,24,train,0\n"))
  video_dir = tmp_path / "videos"
  # One clip sits in the <label>/ sub-folder some download scripts use.
  nested = _touch(video_dir / "air drumming" / "bbb_000000_000010.mp4")
  dataset = layouts.load_dataset("kinetics", csv_path, video_dir=str(video_dir))
  assert dataset.class_names == ["abseiling", "air drumming"]
  assert _by_split(dataset) == {"train": [("abseiling", "aaa_000014_000024")],
                                "val": [("air drumming", "bbb_000000_000010")],
                                "test": [("abseiling", "ccc_000001_000011")]}
  paths = {item.video_id: item.path for item in dataset.items}
  assert paths["aaa_000014_000024"] == str(video_dir / "aaa_000014_000024.mp4")
  assert paths["bbb_000000_000010"] == nested
  reasons = [reason for _, reason in dataset.failures]
  assert len(reasons) == 3
  assert reasons[0].startswith("no label") and reasons[1].startswith("unknown split 'bogus'")
  assert reasons[2].startswith("duplicate video id")


def test_kinetics_filename_is_zero_padded():
  assert layouts.kinetics_filename("--abc", 5, 15.0) == "--abc_000005_000015.mp4"


@pytest.fixture
def ucf_files(tmp_path):
  split_dir = tmp_path / "ucfTrainTestlist"
  _write(split_dir / "classInd.txt", "1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n3 Archery\r\n")
  _write(split_dir / "trainlist02.txt",
         "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
         "HandstandPushups/v_HandStandPushups_g08_c01.avi 2\n"
         "Archery/v_Archery_g01_c01.avi 9\n")
  _write(split_dir / "testlist02.txt",
         "Archery/v_Archery_g02_c01.avi\n"
         "handstandPUSHUPS/v_HandStandPushups_g01_c01.avi\n"
         "Juggling/v_Juggling_g01_c01.avi\n")
  return split_dir


def test_ucf101_split_files(tmp_path, ucf_files):
  video_dir = tmp_path / "UCF-101"
  dataset = layouts.load_dataset("ucf101", str(ucf_files), video_dir=str(video_dir),
                                 split_index=2)
  # The label map keeps classInd's order, not alphabetical.
  assert dataset.class_names == ["ApplyEyeMakeup", "HandstandPushups", "Archery"]
  assert _by_split(dataset) == {
      "train": [("ApplyEyeMakeup", "v_ApplyEyeMakeup_g08_c01"),
                ("HandstandPushups", "v_HandStandPushups_g08_c01")],
      "test": [("Archery", "v_Archery_g02_c01"),
               ("HandstandPushups", "v_HandStandPushups_g01_c01")]}
  assert dataset.items[0].path == str(
      video_dir / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi")
  reasons = sorted(reason.split(" (")[0] for _, reason in dataset.failures)
  assert reasons == ["unknown class index '9'", "unknown label 'Juggling'"]


def test_ucf101_accepts_a_file_inside_the_split_folder(tmp_path, ucf_files):
  dataset = layouts.load_dataset("ucf101", str(ucf_files / "classInd.txt"),
                                 video_dir=str(tmp_path), split_index=2)
  assert len(dataset.items) == 4


def test_ucf101_missing_split_file_is_an_error(tmp_path, ucf_files):
  with pytest.raises(layouts.LayoutError, match="trainlist03.txt"):
    layouts.load_dataset("ucf101", str(ucf_files), video_dir=str(tmp_path), split_index=3)


def test_hmdb51_split_files(tmp_path):
  split_dir = tmp_path / "splits"
  _write(split_dir / "wave_test_split1.txt", "w1.avi 1 \nw2.avi 2 \nw3.avi 0 \n")
  _write(split_dir / "brush_hair_test_split1.txt", "b1.avi 2\nb2.avi 7\n")
  _write(split_dir / "wave_test_split2.txt", "w1.avi 2\n")
  video_dir = tmp_path / "hmdb51"
  dataset = layouts.load_dataset("hmdb51", str(split_dir), video_dir=str(video_dir))
  assert dataset.class_names == ["brush_hair", "wave"]
  assert _by_split(dataset) == {"train": [("wave", "w1")],
                                "test": [("brush_hair", "b1"), ("wave", "w2")]}
  assert [item.path for item in dataset.items if item.video_id == "w1"] == [
      str(video_dir / "wave" / "w1.avi")]
  assert len(dataset.failures) == 1 and "malformed line" in dataset.failures[0][1]


def test_label_map_makes_unknown_labels_failures_and_keeps_its_order(tmp_path):
  for name in ("walk/a.mp4", "run/b.mp4", "swim/c.mp4"):
    _touch(tmp_path / name)
  dataset = layouts.load_dataset("folder", str(tmp_path), label_map=["walk", "run"])
  assert dataset.class_names == ["walk", "run"]
  assert sorted(item.label for item in dataset.items) == ["run", "walk"]
  assert dataset.failures == [(str(tmp_path / "swim" / "c.mp4"),
                               "unknown label 'swim' (not in the label map)")]


def test_select_splits_keeps_the_whole_label_map(tmp_path):
  _touch(tmp_path / "train" / "a" / "1.mp4")
  _touch(tmp_path / "val" / "b" / "2.mp4")
  dataset = layouts.load_dataset("folder", str(tmp_path), splits=["val"])
  assert dataset.class_names == ["a", "b"]
  assert [item.split for item in dataset.items] == ["val"]
