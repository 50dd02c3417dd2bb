"""What `D3DDistiller`'s steps need to know of Keras 3.15's handling of `tf.distribute`.

Two places where Keras' TF trainer and a nested D3D batch (`{"rgb": .., "flow": ..}, labels`)
meet a strategy: Keras learns a batch's shapes by reducing one distributed batch, which
MultiWorkerMirroredStrategy rejects for a nested one (`first_replica_batch` gives one replica's
part instead), and Keras averages multi-worker step logs with a reduce that fails on scalars
(`reducible_logs`). Both follow Keras 3.15's private code (the reason for the pin in setup.py).
"""

import keras
import tensorflow as tf


def keras_reduces_across_workers(strategy) -> bool:
  """Whether Keras reduces step outputs across workers.

  Keras 3.15 asks `strategy.extended._in_multi_worker_mode()`; in public API that is "more
  replicas than this worker has devices" (replicas = workers x local devices).
  """
  return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
          and strategy.num_replicas_in_sync > len(strategy.extended.worker_devices))


def first_replica_batch(strategy, iterator):
  """One replica's part of the next distributed batch (its shapes are the batch's), or None."""
  local = strategy.experimental_local_results
  for _, _, it in iterator:
    return keras.tree.map_structure(lambda v: local(v)[0], next(it))
  return None


def reducible_logs(logs, strategy):
  """Step logs Keras can average across workers: `strategy.reduce("MEAN", v, axis=0)` fails on
  scalars (tensorflow/tensorflow#72388); a leading axis of 1 reduces to the mean."""
  if not keras_reduces_across_workers(strategy):
    return logs
  return {name: tf.reshape(value, [1]) for name, value in logs.items()}
