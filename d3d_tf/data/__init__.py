"""Video data: the record schema, label maps and tf.data pipelines."""

from d3d_tf.data import host_memory

# Before TensorFlow's first op: pooled host memory makes big clips cheap (see host_memory).
host_memory.request_pooled_allocator()
