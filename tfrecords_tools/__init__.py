"""Dataset converters: videos to sharded TFRecords with RGB frames and optical flow."""
