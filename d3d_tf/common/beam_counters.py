"""A Beam pipeline's counters as a dict: what the converter and feature extraction report."""

from typing import Dict, Iterable

from apache_beam.metrics.metric import MetricsFilter


def counters(result, namespace: str, names: Iterable[str]) -> Dict[str, int]:
  """`names` -> the pipeline's counter values in `namespace`: committed, or attempted where
  a runner keeps no committed values; 0 for a counter never incremented."""
  values = dict.fromkeys(names, 0)
  for counter in result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]:
    value = counter.committed if counter.committed is not None else counter.attempted
    values[counter.key.metric.name] += value or 0
  return values
