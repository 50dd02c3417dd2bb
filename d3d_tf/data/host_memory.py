"""Host memory for the input pipelines: TensorFlow's pooling (BFC) CPU allocator.

A decoded clip is tens of megabytes (64x224x224x3 float32: 38 MB) and each pipeline stage makes
a new one. TensorFlow's default CPU allocator hands such sizes to the system, which maps fresh
pages for every clip and faults and zeroes them in as they are first written: on the 2-core
benchmark machine that cost more than the bilinear resize itself. The BFC allocator
keeps freed memory and reuses it, as it does on GPUs.

TensorFlow reads the switch once, when it creates its CPU device (its first op), so a program
asks before that: the CLIs (`d3d_tf.train`) call `request_pooled_allocator()` first thing in
their main; importing `d3d_tf.data` does not, since the setting is the whole process's (a
script that imports the library keeps TensorFlow's default unless it asks). An explicit
`TF_CPU_ALLOCATOR_USE_BFC` in the environment wins (`false` turns pooling off). The price:
memory freed by TensorFlow stays reserved by the process, so its resident size stays at its
peak.
"""

import os

ALLOCATOR_ENV = "TF_CPU_ALLOCATOR_USE_BFC"


def request_pooled_allocator() -> None:
  """Asks for the BFC CPU allocator unless the environment already decides; see module doc."""
  os.environ.setdefault(ALLOCATOR_ENV, "true")


def pooled_allocator_active() -> bool:
  """Whether TensorFlow's CPU device uses the BFC allocator (only it keeps memory stats).

  Initializes TensorFlow's devices if nothing did yet.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    tf.config.experimental.get_memory_info("CPU:0")
    return True
  except ValueError:
    return False
