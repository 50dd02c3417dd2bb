"""Which video goes to which shard: a pure function of the video ids, so reruns resume.

Videos are ordered by a hash of their id, which mixes classes within each shard (readers
interleave a few shards at a time) and depends on nothing but the ids.
"""

import dataclasses
import math
from typing import List, Tuple

from tfrecords_tools import layouts

VIDEOS_PER_SHARD = 32  # With --num_shards 0: ~100-400 MB shards at short side 256 with flow.


@dataclasses.dataclass(frozen=True)
class ShardPlan:
  split: str
  index: int
  count: int
  items: Tuple[layouts.VideoItem, ...]

  @property
  def name(self) -> str:
    return shard_name(self.split, self.index, self.count)


def shard_name(split: str, index: int, count: int) -> str:
  return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def plan_shards(dataset: layouts.Dataset, num_shards: int = 0) -> List[ShardPlan]:
  """Assigns every video of every split to a shard, deterministically.

  `num_shards` is per split; 0 picks about `VIDEOS_PER_SHARD` videos a shard. A split never
  gets more shards than videos.
  """
  plans = []
  for split in dataset.splits():
    items = sorted((item for item in dataset.items if item.split == split),
                   key=lambda item: (layouts.stable_hash(item.video_id), item.video_id))
    count = num_shards or math.ceil(len(items) / VIDEOS_PER_SHARD)
    count = max(1, min(count, len(items)))
    for index in range(count):
      chunk = items[index * len(items) // count:(index + 1) * len(items) // count]
      plans.append(ShardPlan(split, index, count, tuple(chunk)))
  return plans
