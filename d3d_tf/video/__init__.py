"""Video files in NumPy: PyAV decoding, seeking to sampled frames, and OpenCV optical flow.

Beside `d3d_tf.data`, not under it: the TFRecord pipelines never import PyAV or OpenCV; the
raw-video pipeline (`d3d_tf.data.video_source`) and the converter call in here.
"""

# Files taken as videos (lower-case suffixes), by the converter's folder layout and `predict`.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv",
                    ".ogv", ".3gp", ".wmv")
