"""Annotation parsing: turns each supported dataset layout into one list of labelled videos.

Every layout yields a `Dataset`: the videos (path, label, split, id), the class names in label
map order, and the annotation entries that could not be used (bad lines, unknown labels), which
the converter lists in failures.csv next to the videos that fail to decode. Parsing never opens
a video, so it is fast even for Kinetics. Paths may be URLs (gs://; `d3d_tf.common.file_system`).

Layouts (WORKSPACE.md, "Data layout", shows each on disk):
  folder:   <input>/<class>/<video>, or <input>/<split>/<class>/<video> with split folders
            named train/val/test.
  kinetics: a CSV with columns label,youtube_id,time_start,time_end,split; videos are
            <video_dir>/<youtube_id>_<start:06d>_<end:06d>.mp4.
  ucf101:   classInd.txt, trainlist0N.txt, testlist0N.txt; videos <video_dir>/<class>/<video>.
  hmdb51:   <class>_test_split<N>.txt with "<video> <0|1|2>" lines; videos as for ucf101.
"""

import csv
import dataclasses
import hashlib
import os
from typing import Dict, List, Optional, Sequence, Tuple

from d3d_tf.common import file_system as fs
from d3d_tf import video

LAYOUTS = ("folder", "kinetics", "ucf101", "hmdb51")
TRAIN, VAL, TEST = "train", "val", "test"
# Training clips whose labels the student does not see (`d3d_tf.train --unlabelled_train_files`
# hides them); their records keep the true label, so a teacher can train on them.
UNLABELLED = "unlabelled"
SPLITS = (TRAIN, VAL, TEST, UNLABELLED)

# Files the folder layout takes as videos; anything else in a class folder is ignored.
VIDEO_EXTENSIONS = video.VIDEO_EXTENSIONS

_KINETICS_SPLITS = {"train": TRAIN, "training": TRAIN, "validate": VAL, "validation": VAL,
                    "val": VAL, "valid": VAL, "test": TEST, "testing": TEST}


class LayoutError(ValueError):
  """The annotations as a whole cannot be used (missing file, no videos): nothing to convert."""


@dataclasses.dataclass(frozen=True)
class VideoItem:
  """One video to convert. `video_id` is unique within its split and names the record."""
  path: str
  label: str
  split: str
  video_id: str


@dataclasses.dataclass
class Dataset:
  """Videos, class names in label-map order, and (path, reason) pairs of unusable entries."""
  items: List[VideoItem]
  class_names: List[str]
  failures: List[Tuple[str, str]] = dataclasses.field(default_factory=list)

  def splits(self) -> List[str]:
    """The splits present, in train/val/test/unlabelled order."""
    present = {item.split for item in self.items}
    return [split for split in SPLITS if split in present]


def stable_hash(text: str) -> str:
  """A hash that is the same in every process and Python version (unlike `hash()`)."""
  return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _read_lines(path: str) -> List[Tuple[int, str]]:
  """(line number, stripped text) of the non-empty lines; tolerates CRLF and a UTF-8 BOM."""
  with fs.open(path, encoding="utf-8-sig", errors="replace") as f:
    return [(n, line.strip()) for n, line in enumerate(f, start=1) if line.strip()]


def _require_file(path: str, what: str) -> str:
  if not fs.isfile(path):
    raise LayoutError(f"{what} {path!r} does not exist.")
  return path


class _VideoFiles:
  """Whether a video under `video_dir` exists: `os.path.exists` on a local disk; under a URL
  one listing, three levels deep (the deepest layout), instead of a request per video, which
  would take hours for Kinetics on gs://."""

  def __init__(self, video_dir: str):
    self._video_dir = video_dir
    self._listed = None

  def exists(self, path: str) -> bool:
    if not fs.is_url(path):
      return os.path.exists(path)
    if self._listed is None:
      self._listed = {found for pattern in ("*", "*/*", "*/*/*")
                      for found in fs.glob(self._video_dir, pattern)}
    return path in self._listed


def _find_video(videos: _VideoFiles, video_dir: str, relative: str) -> str:
  """`<video_dir>/<relative>`, falling back to the bare file name in `video_dir` (some copies
  of UCF101/HMDB51 are unpacked flat). A missing file is reported later, by the decoder."""
  nested = os.path.join(video_dir, relative)
  if videos.exists(nested):
    return nested
  flat = os.path.join(video_dir, os.path.basename(relative))
  return flat if videos.exists(flat) else nested


# === folder ===


def _class_folders(root: str) -> List[str]:
  return sorted(name for name in fs.listdir(root)
                if not name.startswith(".") and fs.isdir(os.path.join(root, name)))


def _videos_in(folder: str) -> List[str]:
  """Video file names; under a URL the extension decides, sparing a request per file."""
  return sorted(name for name in fs.listdir(folder)
                if not name.startswith(".") and name.lower().endswith(VIDEO_EXTENSIONS)
                and (fs.is_url(folder) or os.path.isfile(os.path.join(folder, name))))


def parse_folder(root: str, val_fraction: float = 0.0) -> Dataset:
  """`root/<class>/<video>`, or `root/<split>/<class>/<video>` when every subfolder of root is
  named train, val, test or unlabelled.

  Without split folders everything is train, unless `val_fraction` > 0: then within each class
  that fraction of videos (rounded, picked by a hash of the file name so the choice survives
  reruns and additions) goes to val.
  """
  if not fs.isdir(root):
    raise LayoutError(f"--input {root!r} is not a folder; the folder layout expects "
                      "<input>/<class>/<video>.")
  top = _class_folders(root)
  has_split_folders = bool(top) and all(name in SPLITS for name in top)
  if has_split_folders and val_fraction > 0:
    raise LayoutError(f"--input {root!r} already has split folders ({', '.join(top)}); drop "
                      "--val_fraction.")
  items = []
  for split in (top if has_split_folders else [TRAIN]):
    split_root = os.path.join(root, split) if has_split_folders else root
    for label in _class_folders(split_root):
      names = _videos_in(os.path.join(split_root, label))
      val_names = set()
      if val_fraction > 0:
        ranked = sorted(names, key=lambda name: stable_hash(f"{label}/{name}"))
        val_names = set(ranked[:int(round(len(names) * val_fraction))])
      for name in names:
        items.append(VideoItem(
            path=os.path.join(split_root, label, name), label=label,
            split=VAL if name in val_names else split,
            video_id=f"{label}/{os.path.splitext(name)[0]}"))
  if not items:
    raise LayoutError(f"No videos ({', '.join(VIDEO_EXTENSIONS[:4])}, ...) found under {root!r}; "
                      "the folder layout expects <input>/<class>/<video>.")
  return Dataset(items, sorted({item.label for item in items}))


# === kinetics ===


def kinetics_filename(youtube_id: str, time_start: int, time_end: int) -> str:
  """The file name Kinetics download scripts use: `<id>_<start:06d>_<end:06d>.mp4`."""
  return f"{youtube_id}_{int(time_start):06d}_{int(time_end):06d}.mp4"


def parse_kinetics(csv_path: str, video_dir: str) -> Dataset:
  """A Kinetics annotation CSV (`label,youtube_id,time_start,time_end,split[,is_cc]`).

  Videos are looked up as `<video_dir>/<file>`, then `<video_dir>/<label>/<file>` and
  `<video_dir>/<split>/<label>/<file>` (the other common download layouts). Rows without a
  label (Kinetics' test CSVs) or with an unknown split are listed as failures.
  """
  _require_file(csv_path, "Kinetics CSV")
  items, failures = [], []
  videos = _VideoFiles(video_dir)
  with fs.open(csv_path, encoding="utf-8-sig", newline="") as f:
    reader = csv.DictReader(f)
    needed = {"youtube_id", "time_start", "time_end"}
    if not reader.fieldnames or not needed <= set(reader.fieldnames):
      raise LayoutError(f"{csv_path}: expected a header with label,youtube_id,time_start,"
                        f"time_end,split. Received: {reader.fieldnames}")
    for row in reader:
      where = f"{csv_path}:{reader.line_num}"
      try:
        file_name = kinetics_filename(row["youtube_id"].strip(), float(row["time_start"]),
                                      float(row["time_end"]))
      except (TypeError, ValueError, AttributeError):
        failures.append((where, f"malformed row {row}"))
        continue
      raw_split = (row.get("split") or "train").strip()
      split = _KINETICS_SPLITS.get(raw_split.lower())
      label = (row.get("label") or "").strip()
      path = os.path.join(video_dir, file_name)
      if not videos.exists(path):
        for candidate in (os.path.join(video_dir, label, file_name),
                          os.path.join(video_dir, raw_split, label, file_name)):
          if label and videos.exists(candidate):
            path = candidate
            break
      video_id = os.path.splitext(file_name)[0]
      if split is None:
        failures.append((path, f"unknown split {raw_split!r} ({where})"))
      elif not label:
        failures.append((path, f"no label ({where})"))
      else:
        items.append(VideoItem(path, label, split, video_id))
  if not items:
    raise LayoutError(f"{csv_path}: no labelled rows.")
  return Dataset(items, sorted({item.label for item in items}), failures)


# === ucf101 ===


def parse_ucf101(split_dir: str, video_dir: str, split_index: int = 1) -> Dataset:
  """The official UCF101 split files; the label map follows classInd.txt (index 1 first)."""
  class_file = _require_file(os.path.join(split_dir, "classInd.txt"), "UCF101 class index")
  class_names, failures = [], []
  videos = _VideoFiles(video_dir)
  for line_number, line in _read_lines(class_file):
    index, _, name = line.partition(" ")
    if not index.isdigit() or int(index) != len(class_names) + 1 or not name.strip():
      raise LayoutError(f"{class_file}:{line_number}: expected '<index> <class>' with index "
                        f"{len(class_names) + 1}. Received: {line!r}")
    class_names.append(name.strip())
  by_lower = {name.lower(): name for name in class_names}
  items = []
  for split, prefix in ((TRAIN, "trainlist"), (TEST, "testlist")):
    list_file = _require_file(
        os.path.join(split_dir, f"{prefix}{split_index:02d}.txt"), f"UCF101 {split} list")
    for line_number, line in _read_lines(list_file):
      where = f"{list_file}:{line_number}"
      fields = line.split()
      relative = fields[0].replace("\\", "/")
      path = _find_video(videos, video_dir, relative)
      folder = relative.split("/")[0] if "/" in relative else ""
      if len(fields) > 1:  # trainlist: the 1-based class index is given.
        try:
          label = class_names[int(fields[1]) - 1]
        except (ValueError, IndexError):
          failures.append((path, f"unknown class index {fields[1]!r} ({where})"))
          continue
      else:  # testlist: the class is the folder. UCF's own files disagree on case at times
        label = by_lower.get(folder.lower())  # (HandStandPushups / HandstandPushups).
        if label is None:
          failures.append((path, f"unknown label {folder!r} ({where})"))
          continue
      video_id = os.path.splitext(os.path.basename(relative))[0]
      items.append(VideoItem(path, label, split, video_id))
  return Dataset(items, class_names, failures)


# === hmdb51 ===


def parse_hmdb51(split_dir: str, video_dir: str, split_index: int = 1) -> Dataset:
  """The official HMDB51 split files: 1 = train, 2 = test, 0 = not used in this split."""
  suffix = f"_test_split{split_index}.txt"
  files = sorted(fs.glob(split_dir, "*" + suffix))
  if not files:
    raise LayoutError(f"No HMDB51 split files '*{suffix}' in {split_dir!r}.")
  items, failures = [], []
  videos = _VideoFiles(video_dir)
  for split_file in files:
    label = os.path.basename(split_file)[:-len(suffix)]
    for line_number, line in _read_lines(split_file):
      fields = line.split()
      path = _find_video(videos, video_dir, os.path.join(label, fields[0]))
      if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
        failures.append((path, f"malformed line {line!r} ({split_file}:{line_number})"))
        continue
      if fields[1] == "0":
        continue
      split = TRAIN if fields[1] == "1" else TEST
      items.append(VideoItem(path, label, split, os.path.splitext(fields[0])[0]))
  return Dataset(items, sorted({os.path.basename(f)[:-len(suffix)] for f in files}), failures)


# === shared steps ===


def drop_duplicates(dataset: Dataset) -> Dataset:
  """Keeps the first video of each (split, id): a record id must name one video."""
  seen, items, failures = set(), [], list(dataset.failures)
  for item in dataset.items:
    key = (item.split, item.video_id)
    if key in seen:
      failures.append((item.path, f"duplicate video id {item.video_id!r} in split {item.split}"))
    else:
      seen.add(key)
      items.append(item)
  return Dataset(items, dataset.class_names, failures)


def apply_label_map(dataset: Dataset, class_names: Sequence[str]) -> Dataset:
  """Adopts a given label map (e.g. train's, to convert val alone later); videos whose label is
  not in it become failures."""
  known = set(class_names)
  items, failures = [], list(dataset.failures)
  for item in dataset.items:
    if item.label in known:
      items.append(item)
    else:
      failures.append((item.path, f"unknown label {item.label!r} (not in the label map)"))
  return Dataset(items, list(class_names), failures)


def select_splits(dataset: Dataset, splits: Sequence[str]) -> Dataset:
  """Keeps only `splits`; the label map stays whole so indices agree with other conversions."""
  wanted = set(splits)
  return Dataset([item for item in dataset.items if item.split in wanted],
                 dataset.class_names, dataset.failures)


def load_dataset(layout: str, input_path: str, video_dir: Optional[str] = None,
                 split_index: int = 1, val_fraction: float = 0.0,
                 label_map: Optional[Sequence[str]] = None,
                 splits: Optional[Sequence[str]] = None) -> Dataset:
  """Parses `input_path` as `layout` and applies the optional label map and split selection.

  For ucf101/hmdb51 `input_path` may be the split-file folder or any file inside it.
  """
  if layout not in LAYOUTS:
    raise ValueError(f"layout must be one of {LAYOUTS}. Received: layout={layout!r}")
  if layout == "folder":
    dataset = parse_folder(input_path, val_fraction)
  else:
    if not video_dir:
      raise ValueError(f"The {layout} layout needs video_dir.")
    if layout == "kinetics":
      dataset = parse_kinetics(input_path, video_dir)
    else:
      split_dir = input_path if fs.isdir(input_path) else os.path.dirname(input_path)
      parse = parse_ucf101 if layout == "ucf101" else parse_hmdb51
      dataset = parse(split_dir, video_dir, split_index)
  dataset = drop_duplicates(dataset)
  # Splits first: videos of splits not converted now are not failures of this run.
  if splits:
    dataset = select_splits(dataset, splits)
  if label_map is not None:
    dataset = apply_label_map(dataset, label_map)
  return dataset


def split_counts(dataset: Dataset) -> Dict[str, int]:
  counts = {}
  for item in dataset.items:
    counts[item.split] = counts.get(item.split, 0) + 1
  return counts
