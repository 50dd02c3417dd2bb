"""Video data: the record schema, label maps and tf.data pipelines (decoding: `d3d_tf.video`).

Importing it changes no process-wide setting; the CLIs ask for pooled host memory themselves
(`host_memory.request_pooled_allocator`, before TensorFlow's first op).
"""
