"""Running trained models on video files: classification, streaming windows, features."""
