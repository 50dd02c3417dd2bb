"""Values several modules share, named once: clip geometry defaults and run-directory files.

A default that two modules typed separately could drift apart (a model trained with one centre
crop, evaluated with another); each lives here and is imported. No TensorFlow: the commands'
configs read these before parsing their flags.
"""

# Clip geometry.
CROP_FRACTION = 0.875  # Evaluation's centre crop: crop side / short side (224 of 256).
SHORT_SIDE = 256  # Pixels of the short side frames are resized to (records, video inputs).
MIN_AREA = 0.08  # Smallest random training crop, as a fraction of the frame area.
FLOW_BOUND = 20.0  # Flow is clipped to [-B, B] pixels before it is quantized to 0..255.
# The rate assumed for a video stream that states none (raw elementary streams): FFmpeg's own
# guess. Frame times (and a frame count from the duration) use it; a decoder that seeks by
# timestamp does not trust it and counts frames from the start instead.
FALLBACK_FPS = 25.0
# The share of the frames its container promises that a video may lose (a corrupt packet, a
# few frames at the end) and still be used; a file cut short loses more and is refused.
MAX_LOST_FRACTION = 0.05

# Files of a model dir (d3d_tf.train) and of other runs' output dirs.
MODEL_FILE = "student.keras"  # The trained model; best/ holds the best one by validation.
FLAGS_FILE = "flags.txt"  # The run's flags: rerun it with --flagfile=<dir>/flags.txt.
LABEL_MAP_FILE = "label_map.txt"  # Class names, one a line, in label order.
FINAL_METRICS_FILE = "final_metrics.json"  # A finished training run's metrics.

# Files tfrecords_tools.build_tfrecords writes beside its shards.
SUMMARY_FILE = "summary.json"  # Counts, flow seconds per video, the settings.
FAILURES_FILE = "failures.csv"  # Videos that could not be converted, and why.
