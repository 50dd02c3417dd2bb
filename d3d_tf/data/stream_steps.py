"""The steps every clip pipeline shares: its seed, a stateless seed per clip, the last stage.

Training on records (`datasets`) and evaluation and raw videos (`view_datasets`) build their
streams from these, so a seed means the same thing in each.
"""

import random
from typing import Optional

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def resolve_seed(seed: Optional[int]) -> int:
  """`seed`, or a fresh random one: every random op then gets an explicit Python-int seed.

  Python ints, never tensors: `Dataset.shuffle` fails on a tensor seed while a global seed of
  0 is set, and unseeded ops fail under `enable_op_determinism`.
  """
  return random.SystemRandom().randrange(1, 2**31 - 1) if seed is None else int(seed)


def with_clip_seeds(ds: tf.data.Dataset, seed: int, num_pipelines: int = 1,
                    pipeline_id: int = 0) -> tf.data.Dataset:
  """Adds a stateless seed [r, index] per element (`r` from a seeded random stream).

  Both parts are drawn per iteration of the dataset: a fresh dataset built with the same
  `seed` replays the same seeds, and index = position * num_pipelines + pipeline_id keeps the
  input pipelines of a distributed job apart.
  """
  randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

  def add(index, element, r):
    position = index * num_pipelines + pipeline_id
    return dict(element, seed=tf.stack([r, position]))

  return tf.data.Dataset.zip((ds.enumerate(), randoms)).map(lambda ie, r: add(ie[0], ie[1], r))


def finish(ds: tf.data.Dataset, deterministic: bool) -> tf.data.Dataset:
  """The last stage of every pipeline: prefetch and the order option.

  Nothing is attached to the dataset (an attribute would not survive the caller's next `.map`):
  a caller that wants the skip counts passes its own `SkipCounter`.
  """
  options = tf.data.Options()
  options.deterministic = deterministic
  return ds.prefetch(AUTOTUNE).with_options(options)
