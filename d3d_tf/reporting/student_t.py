"""Student's t distribution: its CDF and its quantile, without SciPy.

The seed intervals need the exact two-sided 95% quantile for any number of seeds; a table that
stops at a few degrees of freedom and then says 2.0 makes the intervals of 12 or more seeds too
narrow (t(0.975, 11) is 2.201). The CDF comes from the regularized incomplete beta function,
evaluated by its continued fraction; the quantile by bisection on the CDF.
"""

import math

_TINY = 1e-300
_EPSILON = 1e-15


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
  """The continued fraction of I_x(a, b), evaluated by the modified Lentz method.

  Converges fast for x < (a + 1) / (a + b + 2); the caller swaps (a, b, x) otherwise.
  """
  c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
  d = 1.0 / (d if abs(d) > _TINY else _TINY)
  fraction = d
  for m in range(1, 1000):
    # Each step applies the fraction's even term for m, then its odd term.
    for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                      -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
      d = 1.0 + numerator * d
      d = 1.0 / (d if abs(d) > _TINY else _TINY)
      c = 1.0 + numerator / c
      c = c if abs(c) > _TINY else _TINY
      fraction *= c * d
    if abs(c * d - 1.0) < _EPSILON:
      break
  return fraction


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
  """I_x(a, b) for a, b > 0 and x in [0, 1]."""
  if x <= 0.0:
    return 0.0
  if x >= 1.0:
    return 1.0
  front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                   + a * math.log(x) + b * math.log1p(-x))
  if x < (a + 1.0) / (a + b + 2.0):
    return front * _beta_continued_fraction(a, b, x) / a
  return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def cdf(t: float, df: float) -> float:
  """P(T <= t) for Student's t with `df` degrees of freedom."""
  tail = 0.5 * regularized_incomplete_beta(0.5 * df, 0.5, df / (df + t * t))
  return 1.0 - tail if t >= 0 else tail


def quantile(p: float, df: float) -> float:
  """The t with P(T <= t) = p, to about 1e-12 relative: e.g. quantile(0.975, 4) = 2.7764."""
  if not 0.0 < p < 1.0:
    raise ValueError(f"p must be in (0, 1). Received: p={p}")
  if not df > 0:
    raise ValueError(f"df must be positive. Received: df={df}")
  if p < 0.5:
    return -quantile(1.0 - p, df)
  low, high = 0.0, 1.0
  while cdf(high, df) < p:
    low, high = high, 2.0 * high
  while high - low > 1e-12 * high:
    middle = 0.5 * (low + high)
    if cdf(middle, df) < p:
      low = middle
    else:
      high = middle
  return 0.5 * (low + high)
