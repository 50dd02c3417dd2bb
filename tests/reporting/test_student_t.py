"""Student-t quantiles against printed tables, and seed intervals that use them."""

import math

import pytest

from d3d_tf.reporting import seeds
from d3d_tf.reporting import student_t


@pytest.mark.parametrize("df, expected", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622),
                                          (10, 2.2281), (11, 2.2010), (30, 2.0423),
                                          (100, 1.9840)])
def test_two_sided_95_quantiles_match_the_table(df, expected):
  assert round(student_t.quantile(0.975, df), 4) == expected


def test_other_levels_symmetry_and_the_normal_limit():
  assert round(student_t.quantile(0.995, 5), 4) == 4.0321
  assert round(student_t.quantile(0.95, 20), 4) == 1.7247
  assert student_t.quantile(0.025, 7) == pytest.approx(-student_t.quantile(0.975, 7), rel=1e-12)
  assert student_t.quantile(0.5, 3) == pytest.approx(0.0, abs=1e-12)
  assert round(student_t.quantile(0.975, 1e7), 4) == 1.9600
  # Cauchy (1 degree of freedom) has a closed form to check the CDF against.
  assert student_t.cdf(2.0, 1) == pytest.approx(0.5 + math.atan(2.0) / math.pi, rel=1e-12)
  with pytest.raises(ValueError, match="p must be in"):
    student_t.quantile(1.0, 3)


def test_interval_of_twelve_seeds_uses_t_of_eleven_degrees_of_freedom():
  values = seeds.stats([0.1 * (i % 3) for i in range(12)])
  low, high = seeds.t_interval(values)
  assert (high - low) / 2 == pytest.approx(2.2010 * values["stderr"], rel=1e-4)
