"""Tiny video records for the training tests: 12 videos of 12 frames, 40x40, 3 classes.

Class c moves its texture in direction c, so both RGB and flow carry the label.
"""

import os

from d3d_tf.data.label_map import write_label_map
from tests.data import records_fixture as rf

MOTIONS = ((2, 0), (0, 2), (-2, -2))
NUM_CLASSES = len(MOTIONS)


def write_tiny_records(directory, num_videos=12, shards=2, size=40, num_frames=12):
  """Writes `train-*.tfrecord`, `val-*.tfrecord` and `label_map.txt` into `directory`."""
  os.makedirs(directory, exist_ok=True)
  for split, count in (("train", num_videos), ("val", NUM_CLASSES)):
    per_shard = [[] for _ in range(shards)]
    for k in range(count):
      label = k % NUM_CLASSES
      dx, dy = MOTIONS[label]
      per_shard[k % shards].append(rf.make_video_example(
          f"{split}{k:03d}", label, num_frames=num_frames, height=size, width=size, dx=dx,
          dy=dy, seed=k + (1000 if split == "val" else 0)))
    for s, examples in enumerate(per_shard):
      if examples:
        rf.write_records(os.path.join(directory, f"{split}-{s:05d}.tfrecord"), examples)
  write_label_map(os.path.join(directory, "label_map.txt"), [f"class{c}" for c in range(3)])
  return directory


def tiny_flags(data_dir, model_dir, stream, **overrides):
  """Flag values for a tiny run (depth 0.125, cut after Mixed_3c, 8 frames, 32 px): a small
  graph, since tracing the network dominates these tests.
  """
  values = dict(
      stream=stream, train_files=os.path.join(data_dir, "train-*.tfrecord"),
      eval_files=os.path.join(data_dir, "val-*.tfrecord"), model_dir=model_dir,
      train_steps=2, checkpoint_every=1, batch_size=4, num_frames=8, crop_size=32,
      depth_multiplier=0.125, final_endpoint="Mixed_3c", learning_rate=0.01, eval_clips=1, seed=1,
      shuffle_buffer=16)
  values.update(overrides)
  return values
