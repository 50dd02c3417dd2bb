"""Video data: the record schema, label maps and tf.data pipelines."""
