"""make_synthetic's unlabelled split: extra training clips of their own, stored with
their true labels; with --unlabelled_per_class=0 (the default) every split is as before."""

import collections
import glob
import os

import numpy as np

from d3d_tf.data.label_map import read_label_map
from tfrecords_tools import synthetic

_TINY = ("--train_per_class=1", "--val_per_class=1", "--size=32", "--min_length=4",
         "--max_length=4", "--noclutter", "--workers=1")


def _shards(records_dir):
  return {os.path.basename(p): open(p, "rb").read()
          for p in sorted(glob.glob(os.path.join(records_dir, "*.tfrecord")))}


def test_unlabelled_split_is_added_and_the_other_splits_stay_byte_identical(
    run_cli, read_records, tmp_path):
  for name, extra in (("usual", ()), ("with", ("--unlabelled_per_class=2",))):
    result = run_cli("tfrecords_tools.make_synthetic", f"--output_dir={tmp_path / name}",
                     *_TINY, *extra)
    assert result.returncode == 0, result.stderr[-2000:]
  usual, added = (_shards(tmp_path / n / "records") for n in ("usual", "with"))
  assert not any(n.startswith("unlabelled") for n in usual)  # The default, 0: no such split.
  assert {n: b for n, b in added.items() if not n.startswith("unlabelled")} == usual
  label_map = (tmp_path / "with" / "records" / "label_map.txt").read_text()
  assert label_map == (tmp_path / "usual" / "records" / "label_map.txt").read_text()
  clips = read_records(glob.glob(str(tmp_path / "with" / "records" / "unlabelled-*"))[0])
  # Two clips per class, each stored with its class: the teacher trains on these labels.
  assert len(clips) == 2 * len(synthetic.CLASSES)
  labels = collections.Counter(int(c.context["video/label/index"]) for c in clips)
  assert labels == {k: 2 for k in range(len(synthetic.CLASSES))}
  names = read_label_map(str(tmp_path / "with" / "records" / "label_map.txt"))
  for clip in clips:  # The true class: the one the clip was rendered for.
    assert clip.context["video/id"].startswith(
        names[int(clip.context["video/label/index"])] + "/")


def test_unlabelled_clips_are_new_clips_not_copies_of_training_clips():
  def spec(split):
    return synthetic.ClipSpec(seed=0, split=split, class_index=3, index=0, size=32,
                              min_length=4, max_length=4, clutter=False)
  train, unlabelled = synthetic.render_clip(spec("train")), synthetic.render_clip(
      spec("unlabelled"))
  assert train.shape[1:] == unlabelled.shape[1:]
  assert train.shape != unlabelled.shape or np.abs(
      train.astype(int) - unlabelled).mean() > 5
