"""Evaluation: multi-view inference, late-fusion ensembles, metrics and reports."""
