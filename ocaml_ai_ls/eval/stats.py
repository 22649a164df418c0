"""The statistics of the evaluation report, in plain Python (no numpy: the report must
not need the chart's dependencies), deterministic (bootstraps are seeded).

- A proportion: the Wilson score interval (`metrics.stats.wilson`).
- pass@k: the unbiased estimator of Chen et al. 2021, per task with n samples of which
  c passed, `1 - C(n-c, k) / C(n, k)`, averaged over tasks; its interval is a
  percentile bootstrap over tasks.
- A difference of two independent proportions: Newcombe's hybrid score interval
  (1998, method 10) and the pooled two-proportion z-test.
- A difference of two paired proportions (the same attempts before and after repair):
  Newcombe's paired score interval (1998, method 10, with his continuity-corrected phi).
- A paired difference of means over tasks: a percentile bootstrap over tasks and a
  sign-flip permutation test (exact for up to 12 non-zero differences, else sampled).
- A quantile: linear interpolation between ranks (numpy's default) with the
  distribution-free order-statistic interval from the binomial distribution.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

from ..metrics.stats import Z95, percentile, wilson

__all__ = [
    "Z95",
    "bootstrap_mean_ci",
    "newcombe_paired",
    "newcombe_unpaired",
    "pass_at_k",
    "percentile",
    "quantile_ci",
    "sign_flip_p",
    "two_proportion_p",
    "wilson",
]

#: Resamples of the bootstrap intervals, and of a sampled permutation test.
BOOTSTRAP = 2000
PERMUTATIONS = 10000
#: Up to this many non-zero differences the sign-flip test enumerates every sign.
EXACT_FLIPS = 12
ALPHA = 0.05


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """The chance that at least one of k samples drawn without replacement from n, c of
    which passed, passes; None when there are fewer than k samples."""
    if k < 1 or n < k:
        return None
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def bootstrap_mean_ci(
    values: Sequence[float], seed: int = 0, resamples: int = BOOTSTRAP
) -> tuple[float, float] | None:
    """The 95% percentile-bootstrap interval of the mean of `values` (resampled with
    replacement, seeded); None for fewer than two values, where resampling says nothing.
    With few values the interval is too narrow (all equal: no width at all)."""
    if len(values) < 2:
        return None
    data = list(values)
    if min(data) == max(data):
        return data[0], data[0]
    rng = random.Random(seed)
    size = len(data)
    means = sorted(math.fsum(rng.choices(data, k=size)) / size for _ in range(resamples))
    low, high = percentile(means, ALPHA / 2), percentile(means, 1 - ALPHA / 2)
    assert low is not None and high is not None
    return low, high


def _normal_sf2(z: float) -> float:
    """The two-sided tail of the standard normal beyond |z|."""
    return math.erfc(abs(z) / math.sqrt(2))


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """The two-sided p-value of the pooled z-test of x1/n1 = x2/n2; None when a side is
    empty. Equal proportions at 0% or 100% give 1."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return _normal_sf2((x1 / n1 - x2 / n2) / se)


def _clamp(low: float, high: float) -> tuple[float, float]:
    return max(-1.0, low), min(1.0, high)


def newcombe_unpaired(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float] | None:
    """The 95% interval of x1/n1 - x2/n2 for independent samples (Newcombe's hybrid
    score interval, from the two Wilson intervals)."""
    ci1, ci2 = wilson(x1, n1), wilson(x2, n2)
    if ci1 is None or ci2 is None:
        return None
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = ci1, ci2
    diff = p1 - p2
    return _clamp(
        diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


def newcombe_paired(both: int, first: int, second: int, neither: int) -> tuple[float, float] | None:
    """The 95% interval of p1 - p2 for paired binary outcomes: `both` pairs succeed on
    both sides, `first` only on the first, `second` only on the second, `neither` on
    none; p1 = (both + first) / n, p2 = (both + second) / n."""
    n = both + first + second + neither
    if n <= 0:
        return None
    x1, x2 = both + first, both + second
    ci1, ci2 = wilson(x1, n), wilson(x2, n)
    assert ci1 is not None and ci2 is not None
    (l1, u1), (l2, u2) = ci1, ci2
    p1, p2 = x1 / n, x2 / n
    marginals = (both + first) * (second + neither) * (both + second) * (first + neither)
    cross = both * neither - first * second
    if cross > n / 2:
        corrected = cross - n / 2
    elif cross >= 0:
        corrected = 0.0
    else:
        corrected = float(cross)
    phi = corrected / math.sqrt(marginals) if marginals else 0.0
    diff = p1 - p2
    lower = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    upper = (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2
    return _clamp(diff - math.sqrt(max(lower, 0.0)), diff + math.sqrt(max(upper, 0.0)))


def sign_flip_p(diffs: Sequence[float], seed: int = 0, resamples: int = PERMUTATIONS) -> float:
    """The two-sided p-value that paired differences are centred on 0: the share of sign
    assignments whose |sum| is at least the observed one (every assignment when there
    are few non-zero differences, else `resamples` seeded ones, counted as (1+hits)/(1+B))."""
    nonzero = [d for d in diffs if d != 0]
    if not nonzero:
        return 1.0
    observed = abs(math.fsum(nonzero)) - 1e-12
    if len(nonzero) <= EXACT_FLIPS:
        hits = sum(
            1
            for signs in itertools.product((1, -1), repeat=len(nonzero))
            if abs(math.fsum(s * d for s, d in zip(signs, nonzero, strict=True))) >= observed
        )
        return hits / float(2 ** len(nonzero))
    rng = random.Random(seed)
    hits = 0
    for _ in range(resamples):
        total = math.fsum(d if rng.random() < 0.5 else -d for d in nonzero)
        hits += abs(total) >= observed
    return (1 + hits) / (1 + resamples)


def _binomial_cdf(j: int, n: int, q: float) -> float:
    return math.fsum(math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(j + 1))


def quantile_ci(ordered: Sequence[float], q: float) -> tuple[float, float] | None:
    """A distribution-free 95% interval of the q quantile of sorted values: order
    statistics x(l) and x(u) (1-based) with l the largest rank where P(B <= l-1) <= 2.5%
    and u the smallest where P(B <= u-1) >= 97.5%, B ~ Binomial(n, q). With too few
    values for 95% an end is the smallest or largest value (the interval is then
    narrower than 95%)."""
    n = len(ordered)
    if n == 0:
        return None
    cdf = [_binomial_cdf(j, n, q) for j in range(n)]
    low = max((j for j in range(n) if cdf[j] <= ALPHA / 2), default=-1) + 1
    high = min((j + 1 for j in range(n) if cdf[j] >= 1 - ALPHA / 2), default=n)
    low, high = min(max(low, 1), n), min(max(high, 1), n)
    return ordered[low - 1], ordered[high - 1]
