"""Serving: the shared inference preprocessing, the SavedModel module and its warm-up file."""
