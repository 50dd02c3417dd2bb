"""The appearance-shortcut variant: the class is in the actor's colours in training
only, and with the flag off the clips are the usual ones, byte for byte."""

import dataclasses

import numpy as np

from tfrecords_tools import synthetic

NUM_CLASSES = len(synthetic.CLASSES)


def _spec(split, class_index, index, shortcut):
  return synthetic.ClipSpec(seed=0, split=split, class_index=class_index, index=index,
                            clutter=False, actor_scale=2.0, speed=2.0,
                            appearance_shortcut=shortcut)


def test_palettes_are_distinct_and_have_contrast():
  colours = np.concatenate(synthetic.PALETTES)
  gaps = np.linalg.norm(colours[:, None] - colours[None], axis=-1)
  assert gaps[~np.eye(len(colours), dtype=bool)].min() > 30
  assert min(np.linalg.norm(a - b) for a, b in synthetic.PALETTES) >= 100


def test_train_palettes_follow_the_class_test_palettes_do_not():
  per_class = 40
  for split in ("train", "val", "test"):
    worn = [(k, synthetic.actor_palette(_spec(split, k, i, 0.8)))
            for k in range(NUM_CLASSES) for i in range(per_class)]
    with_palette = [(k, p) for k, p in worn if p is not None]
    assert 0.7 < len(with_palette) / len(worn) < 0.9, split
    own = np.mean([k == p for k, p in with_palette])
    if split == "train":
      assert own == 1.0
    else:  # Independent of the class: its own palette about 1 time in 10, every palette used.
      assert own < 0.2, split
      assert {p for _, p in with_palette} == set(range(NUM_CLASSES)), split
  assert synthetic.actor_palette(_spec("train", 3, 0, 0.0)) is None


def test_off_renders_the_usual_clip_and_on_changes_only_the_actor_colours():
  usual = synthetic.ClipSpec(seed=0, split="train", class_index=0, index=0, clutter=False,
                             actor_scale=2.0, speed=2.0)
  plain = synthetic.render_clip(usual)
  np.testing.assert_array_equal(plain, synthetic.render_clip(_spec("train", 0, 0, 0.0)))
  # P = 1: the actor wears class 0's palette; motion, position and pattern stay the same.
  shortcut = synthetic.render_clip(dataclasses.replace(usual, appearance_shortcut=1.0))
  assert shortcut.shape == plain.shape
  difference = np.abs(shortcut.astype(int) - plain).max(axis=-1)
  # The actor (at scale 2 it can fill most of a frame; in this clip about a third) changes;
  # the background, its noise included, stays the same to the bit.
  changed = difference > 40
  assert changed[0].mean() > 0.1 and (difference == 0).mean() > 0.3
  pixels = shortcut[0][changed[0]].astype(np.float32)
  colours = np.concatenate(synthetic.PALETTES)  # Row 2k, 2k + 1: class k's two colours.
  nearest = np.linalg.norm(pixels[:, None] - colours[None], axis=-1).argmin(axis=1) // 2
  assert np.bincount(nearest, minlength=NUM_CLASSES).argmax() == 0
