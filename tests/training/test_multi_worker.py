"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 train in lock step."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.training import tiny_data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _checkpoint_values(directory):
  """Variable name -> value of the student's trained weights in the newest checkpoint.

  Batch-norm moving statistics are left out: like Keras' BatchNormalization (not synchronized)
  each worker keeps its own, from its own half of the batch; the chief's are the ones saved.
  """
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(directory))
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if name.endswith("VARIABLE_VALUE") and "OPTIMIZER_SLOT" not in name
          and "moving_" not in name and "seed_generator" not in name}


@pytest.mark.slow
def test_two_workers_finish_with_identical_weights(tmp_path):
  data_dir = tiny_data.write_tiny_records(str(tmp_path / "data"), shards=4)
  model_dir = tmp_path / "run"
  values = tiny_data.tiny_flags(data_dir, str(model_dir), "rgb", train_steps=3,
                                checkpoint_every=3, strategy="multi_worker", eval_files="")
  flagfile = tmp_path / "run.flags"
  flagfile.write_text("".join(f"--{k}={v}\n" for k, v in values.items() if v != ""))
  cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
  workers = []
  for index in range(2):
    tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
    env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
    workers.append(subprocess.Popen(
        [sys.executable, "-m", "d3d_tf.train", f"--flagfile={flagfile}"], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  outputs = []
  try:
    for worker in workers:
      outputs.append(worker.communicate(timeout=420)[0])
  finally:
    for worker in workers:
      worker.kill()
  for index, (worker, output) in enumerate(zip(workers, outputs)):
    assert worker.returncode == 0, f"worker {index}:\n{output[-3000:]}"

  final = json.loads((model_dir / "final_metrics.json").read_text())
  assert final["step"] == 3
  chief = _checkpoint_values(str(model_dir / "checkpoints"))
  other = _checkpoint_values(str(model_dir / "checkpoints" / "worker1"))
  assert len(chief) > 20 and chief.keys() == other.keys()
  for name in chief:
    np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
