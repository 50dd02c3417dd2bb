"""Training helpers behind `d3d_tf.train_lib`: optimizers, teachers, strategies, callbacks."""
