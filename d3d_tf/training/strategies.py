"""`--strategy` names to `tf.distribute` strategies (created before any model or variable)."""

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
  """`default`: the current strategy; `mirrored`: local devices; `multi_worker`: TF_CONFIG
  cluster (MultiWorkerMirroredStrategy); `tpu`: TPUStrategy via TPUClusterResolver(`tpu`)."""
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == "tpu":
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  raise ValueError(f"Unknown strategy {name!r}; choose one of {STRATEGIES}.")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """True where files of the run are written (worker 0 of a multi-worker cluster)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  return resolver.task_type == "chief" or (
      resolver.task_type == "worker" and resolver.task_id == 0)
