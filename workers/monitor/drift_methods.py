"""Drift statistics: is the current sample distributed like the reference sample?

Pure functions, no I/O. A string key from config picks a method through a registry
(numeric: ``ks``, ``psi``, ``wasserstein``; categorical: ``chi2``, ``jensen_shannon``, ``psi``);
an unknown key fails with the list of valid keys.

Every verdict is sample-size aware, so 50 rows do not fire like 50,000:

* Tests with a p-value (``ks``, ``chi2``) fire only when ``p < cfg.alpha`` *and* the effect size
  (KS statistic, Cramér's V) reaches ``cfg.min_effect``. Few rows rarely give a small p-value;
  many rows make a negligible difference significant, and the effect floor stops it firing.
* Distances (``psi``, ``wasserstein``, ``jensen_shannon``) are compared with their configured
  threshold plus the value sampling noise alone is expected to produce for the two sample sizes.
  That allowance shrinks to zero as the samples grow.
* Fewer than ``cfg.min_samples`` usable values on either side give no verdict: the result has
  ``statistic=None`` and ``drifted=False``.

Missing values (``None`` and NaN) are dropped; numeric methods also drop infinities.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from scipy.spatial.distance import jensenshannon

from workers.errors import ConfigError
from workers.settings import DriftConfig

Kind = Literal["numeric", "categorical"]
KINDS: tuple[Kind, ...] = ("numeric", "categorical")

EPSILON = 1e-4
"""Floor for bin proportions in PSI, so an empty bin does not make ``ln(0)``."""

WASSERSTEIN_NOISE = 1.3
"""Expected Wasserstein-1 distance, in reference standard deviations, between two samples of
the same distribution, per unit of ``sqrt(1/n_ref + 1/n_cur)``. For normal data it is
``sqrt(2/pi) * integral(sqrt(F(x) * (1 - F(x))) dx) = 1.29`` (the empirical-CDF difference
behaves like a Brownian bridge); uniform and exponential data give 1.1-1.2."""


@dataclass(frozen=True)
class DriftResult:
    """One comparison of a current sample with a reference sample.

    ``threshold`` is the effective threshold used for these sample sizes (for ``ks`` and
    ``chi2`` the effect floor ``cfg.min_effect``; ``cfg.alpha`` applies to ``p_value`` as well).
    With too few samples it is the configured base threshold, and nothing was compared.
    """

    method: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    note: str = ""


class DriftMethod(Protocol):
    """A registered drift method: call it with two raw samples and the drift config."""

    @property
    def key(self) -> str: ...

    @property
    def kinds(self) -> frozenset[Kind]: ...

    def __call__(
        self, reference: Sequence[Any], current: Sequence[Any], cfg: DriftConfig
    ) -> DriftResult: ...


DriftFn = Callable[[Sequence[Any], Sequence[Any], DriftConfig], DriftResult]
F = TypeVar("F", bound=DriftFn)


@dataclass(frozen=True)
class _Registered:
    key: str
    kinds: frozenset[Kind]
    fn: DriftFn

    def __call__(
        self, reference: Sequence[Any], current: Sequence[Any], cfg: DriftConfig
    ) -> DriftResult:
        return self.fn(reference, current, cfg)


_REGISTRY: dict[Kind, dict[str, DriftMethod]] = {kind: {} for kind in KINDS}


def register(key: str, kinds: Kind | Iterable[Kind]) -> Callable[[F], F]:
    """Register a drift method under ``key`` for one or more feature kinds.

    The same key may name different functions for different kinds (``psi``).
    The decorated function is returned unchanged.
    """
    wanted: frozenset[Kind] = frozenset([kinds] if isinstance(kinds, str) else kinds)
    unknown = sorted(set(wanted) - set(KINDS))
    if not wanted or unknown:
        raise ValueError(f"drift method {key!r}: kinds must be among {KINDS}, got {unknown}")

    def decorator(fn: F) -> F:
        for kind in wanted:
            if key in _REGISTRY[kind]:
                raise ValueError(f"drift method {key!r} is already registered for {kind}")
            _REGISTRY[kind][key] = _Registered(key, wanted, fn)
        return fn

    return decorator


def method_keys(kind: Kind) -> list[str]:
    """The registered method keys for a feature kind, sorted."""
    return sorted(_REGISTRY.get(kind, {}))


def get_method(key: str, kind: Kind) -> DriftMethod:
    """The method registered as ``key`` for ``kind``.

    Raises
    ------
    ConfigError
        When ``key`` is unknown or not valid for ``kind``; the message lists the valid keys.
    """
    if kind not in _REGISTRY:
        raise ConfigError(f"unknown feature kind {kind!r}; valid: {', '.join(KINDS)}")
    try:
        return _REGISTRY[kind][key]
    except KeyError:
        valid = ", ".join(method_keys(kind))
        raise ConfigError(
            f"unknown drift method {key!r} for {kind} features; valid: {valid}"
        ) from None


def is_numeric(values: Iterable[Any]) -> bool:
    """True when every non-None value is a real number; booleans count as categorical.

    A sample with no values at all counts as numeric.
    """
    return all(
        v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_))
        for v in values
    )


def compare(
    reference: Sequence[Any],
    current: Sequence[Any],
    cfg: DriftConfig,
    *,
    method: str | None = None,
    kind: Kind | None = None,
) -> DriftResult:
    """Compare two samples of one feature with the configured (or given) method.

    ``None`` values are dropped. ``kind`` defaults to what :func:`is_numeric` says about the
    reference (about the current sample when the reference is empty); ``method`` defaults to
    ``cfg.numeric_method`` or ``cfg.categorical_method``.

    Raises
    ------
    ConfigError
        When ``method`` is unknown or not valid for ``kind``.
    TypeError
        When a numeric method meets a value that is not a number.
    """
    ref = [v for v in reference if v is not None]
    cur = [v for v in current if v is not None]
    if kind is None:
        kind = "numeric" if is_numeric(ref if ref else cur) else "categorical"
    if method is None:
        method = cfg.numeric_method if kind == "numeric" else cfg.categorical_method
    return get_method(method, kind)(ref, cur, cfg)


# Effective thresholds ------------------------------------------------------------------------


def _noise(n_reference: int, n_current: int) -> float:
    return 1.0 / n_reference + 1.0 / n_current


def effective_psi_threshold(cfg: DriftConfig, k: int, n_reference: int, n_current: int) -> float:
    """``cfg.psi_threshold + (k - 1) * (1/n_ref + 1/n_cur)`` for ``k`` bins or categories.

    PSI is close to a chi-square statistic divided by the sample size, so two samples of the
    same distribution have an expected PSI of ``(k - 1) * (1/n_ref + 1/n_cur)``.
    """
    return cfg.psi_threshold + max(k - 1, 0) * _noise(n_reference, n_current)


def effective_js_threshold(cfg: DriftConfig, k: int, n_reference: int, n_current: int) -> float:
    """``cfg.js_threshold + sqrt((k - 1) / (8 ln 2) * (1/n_ref + 1/n_cur))`` for ``k`` categories.

    For close distributions the Jensen-Shannon divergence is ``sum((p - q)^2 / m) / 8`` nats,
    and for two samples of one distribution ``sum((p - q)^2 / m)`` is about
    ``chi2(k - 1) * (1/n_ref + 1/n_cur)``. The allowance is the square root of its expectation
    in bits, i.e. the typical distance from sampling noise alone.
    """
    divergence_bits = max(k - 1, 0) / (8 * math.log(2)) * _noise(n_reference, n_current)
    return cfg.js_threshold + math.sqrt(divergence_bits)


def effective_wasserstein_threshold(cfg: DriftConfig, n_reference: int, n_current: int) -> float:
    """``cfg.wasserstein_threshold + WASSERSTEIN_NOISE * sqrt(1/n_ref + 1/n_cur)``.

    The allowance is the expected scaled distance between two samples of the same
    distribution (see :data:`WASSERSTEIN_NOISE`).
    """
    return cfg.wasserstein_threshold + WASSERSTEIN_NOISE * math.sqrt(_noise(n_reference, n_current))


# Sample cleaning -----------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, numbers.Real) and math.isnan(value))


def _numbers(values: Sequence[Any]) -> NDArray[np.float64]:
    """Finite floats; None, NaN and infinities dropped."""
    floats: list[float] = []
    for v in values:
        if v is None:
            continue
        if not isinstance(v, numbers.Real | np.bool_):
            raise TypeError(f"numeric drift method got a {type(v).__name__} value: {v!r}")
        floats.append(float(v))
    array = np.asarray(floats, dtype=np.float64)
    return array[np.isfinite(array)]


def _categories(values: Sequence[Any]) -> list[str]:
    """Values as strings; None and NaN dropped."""
    return [str(v) for v in values if not _is_missing(v)]


def _too_few(
    method: str, n_reference: int, n_current: int, cfg: DriftConfig, threshold: float
) -> DriftResult | None:
    smaller = min(n_reference, n_current)
    if smaller >= cfg.min_samples:
        return None
    return DriftResult(
        method=method,
        statistic=None,
        p_value=None,
        threshold=threshold,
        drifted=False,
        n_reference=n_reference,
        n_current=n_current,
        note=f"too few samples ({smaller} < {cfg.min_samples})",
    )


def _psi(reference_share: NDArray[np.float64], current_share: NDArray[np.float64]) -> float:
    r = np.clip(reference_share, EPSILON, None)
    c = np.clip(current_share, EPSILON, None)
    return float(np.sum((c - r) * np.log(c / r)))


def _category_counts(
    reference: list[str], current: list[str]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    ref_counts, cur_counts = Counter(reference), Counter(current)
    categories = sorted(ref_counts.keys() | cur_counts.keys())
    return (
        np.array([ref_counts[c] for c in categories], dtype=np.float64),
        np.array([cur_counts[c] for c in categories], dtype=np.float64),
    )


# Numeric methods -----------------------------------------------------------------------------


@register("ks", "numeric")
def ks(reference: Sequence[Any], current: Sequence[Any], cfg: DriftConfig) -> DriftResult:
    """Two-sample Kolmogorov-Smirnov test.

    Returns
    -------
    DriftResult
        ``statistic`` is the KS statistic (largest gap between the empirical CDFs), with its
        ``p_value``. Drifted when ``p_value < cfg.alpha`` and ``statistic >= cfg.min_effect``;
        ``threshold`` reports ``cfg.min_effect``.
    """
    ref, cur = _numbers(reference), _numbers(current)
    if (few := _too_few("ks", ref.size, cur.size, cfg, cfg.min_effect)) is not None:
        return few
    result = stats.ks_2samp(ref, cur)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    return DriftResult(
        method="ks",
        statistic=statistic,
        p_value=p_value,
        threshold=cfg.min_effect,
        drifted=p_value < cfg.alpha and statistic >= cfg.min_effect,
        n_reference=int(ref.size),
        n_current=int(cur.size),
    )


@register("psi", "numeric")
def psi_numeric(reference: Sequence[Any], current: Sequence[Any], cfg: DriftConfig) -> DriftResult:
    """Population stability index over quantile bins of the reference.

    Bin edges are the ``cfg.bins`` quantiles of the reference (duplicates removed, outer edges
    at -inf and +inf; bins are ``(lower, upper]``). Bins empty in both samples are dropped, and
    ``k`` is the number left. ``PSI = sum((c - r) * ln(c / r))`` over the bin proportions,
    each floored at :data:`EPSILON`.

    Returns
    -------
    DriftResult
        Drifted when PSI exceeds :func:`effective_psi_threshold`; no p-value.
    """
    ref, cur = _numbers(reference), _numbers(current)
    if (few := _too_few("psi", ref.size, cur.size, cfg, cfg.psi_threshold)) is not None:
        return few
    inner_edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, cfg.bins + 1)[1:-1]))
    n_bins = inner_edges.size + 1
    ref_counts = np.bincount(np.searchsorted(inner_edges, ref, side="left"), minlength=n_bins)
    cur_counts = np.bincount(np.searchsorted(inner_edges, cur, side="left"), minlength=n_bins)
    used = (ref_counts + cur_counts) > 0
    ref_share = ref_counts[used] / ref.size
    cur_share = cur_counts[used] / cur.size
    k = int(used.sum())
    statistic = _psi(ref_share, cur_share)
    threshold = effective_psi_threshold(cfg, k, ref.size, cur.size)
    return DriftResult(
        method="psi",
        statistic=statistic,
        p_value=None,
        threshold=threshold,
        drifted=statistic > threshold,
        n_reference=int(ref.size),
        n_current=int(cur.size),
        note=f"{k} bins",
    )


@register("wasserstein", "numeric")
def wasserstein(reference: Sequence[Any], current: Sequence[Any], cfg: DriftConfig) -> DriftResult:
    """Wasserstein-1 (earth mover's) distance in units of the reference standard deviation.

    A constant reference (standard deviation 0) leaves the distance unscaled.

    Returns
    -------
    DriftResult
        Drifted when the scaled distance exceeds :func:`effective_wasserstein_threshold`;
        no p-value.
    """
    ref, cur = _numbers(reference), _numbers(current)
    few = _too_few("wasserstein", ref.size, cur.size, cfg, cfg.wasserstein_threshold)
    if few is not None:
        return few
    spread = float(np.std(ref))
    statistic = float(stats.wasserstein_distance(ref, cur)) / (spread if spread > 0 else 1.0)
    threshold = effective_wasserstein_threshold(cfg, ref.size, cur.size)
    return DriftResult(
        method="wasserstein",
        statistic=statistic,
        p_value=None,
        threshold=threshold,
        drifted=statistic > threshold,
        n_reference=int(ref.size),
        n_current=int(cur.size),
        note="" if spread > 0 else "constant reference: distance not scaled",
    )


# Categorical methods -------------------------------------------------------------------------


@register("chi2", "categorical")
def chi2(reference: Sequence[Any], current: Sequence[Any], cfg: DriftConfig) -> DriftResult:
    """Chi-square test of homogeneity on category counts, with Cramér's V as effect size.

    Categories are the union of both samples, compared as strings. The test runs on the
    2 x k contingency table without continuity correction;
    ``V = sqrt(chi2 / (n_total * (min(2, k) - 1)))``.

    Returns
    -------
    DriftResult
        ``statistic`` is Cramér's V, with the test's ``p_value``. Drifted when
        ``p_value < cfg.alpha`` and ``V >= cfg.min_effect``; ``threshold`` reports
        ``cfg.min_effect``. A single category overall gives V = 0 and p = 1.
    """
    ref, cur = _categories(reference), _categories(current)
    if (few := _too_few("chi2", len(ref), len(cur), cfg, cfg.min_effect)) is not None:
        return few
    table = np.vstack(_category_counts(ref, cur))
    if table.shape[1] < 2:
        return DriftResult(
            method="chi2",
            statistic=0.0,
            p_value=1.0,
            threshold=cfg.min_effect,
            drifted=False,
            n_reference=len(ref),
            n_current=len(cur),
            note="one category only",
        )
    result = stats.chi2_contingency(table, correction=False)
    p_value = float(result.pvalue)
    cramers_v = math.sqrt(float(result.statistic) / (table.sum() * (min(table.shape) - 1)))
    return DriftResult(
        method="chi2",
        statistic=cramers_v,
        p_value=p_value,
        threshold=cfg.min_effect,
        drifted=p_value < cfg.alpha and cramers_v >= cfg.min_effect,
        n_reference=len(ref),
        n_current=len(cur),
    )


@register("jensen_shannon", "categorical")
def jensen_shannon(
    reference: Sequence[Any], current: Sequence[Any], cfg: DriftConfig
) -> DriftResult:
    """Jensen-Shannon distance (base 2, between 0 and 1) of the category proportions.

    Categories are the union of both samples, compared as strings.

    Returns
    -------
    DriftResult
        Drifted when the distance exceeds :func:`effective_js_threshold` for ``k`` categories;
        no p-value.
    """
    ref, cur = _categories(reference), _categories(current)
    few = _too_few("jensen_shannon", len(ref), len(cur), cfg, cfg.js_threshold)
    if few is not None:
        return few
    ref_counts, cur_counts = _category_counts(ref, cur)
    # Rounding can leave the divergence a hair below 0 for equal proportions: sqrt gives NaN.
    with np.errstate(invalid="ignore"):
        distance = float(jensenshannon(ref_counts, cur_counts, base=2))
    statistic = 0.0 if math.isnan(distance) else distance
    threshold = effective_js_threshold(cfg, ref_counts.size, len(ref), len(cur))
    return DriftResult(
        method="jensen_shannon",
        statistic=statistic,
        p_value=None,
        threshold=threshold,
        drifted=statistic > threshold,
        n_reference=len(ref),
        n_current=len(cur),
    )


@register("psi", "categorical")
def psi_categorical(
    reference: Sequence[Any], current: Sequence[Any], cfg: DriftConfig
) -> DriftResult:
    """Population stability index over category proportions.

    Categories are the union of both samples, compared as strings; ``k`` is their number.
    ``PSI = sum((c - r) * ln(c / r))`` with proportions floored at :data:`EPSILON`.

    Returns
    -------
    DriftResult
        Drifted when PSI exceeds :func:`effective_psi_threshold`; no p-value.
    """
    ref, cur = _categories(reference), _categories(current)
    if (few := _too_few("psi", len(ref), len(cur), cfg, cfg.psi_threshold)) is not None:
        return few
    ref_counts, cur_counts = _category_counts(ref, cur)
    statistic = _psi(ref_counts / len(ref), cur_counts / len(cur))
    threshold = effective_psi_threshold(cfg, ref_counts.size, len(ref), len(cur))
    return DriftResult(
        method="psi",
        statistic=statistic,
        p_value=None,
        threshold=threshold,
        drifted=statistic > threshold,
        n_reference=len(ref),
        n_current=len(cur),
        note=f"{ref_counts.size} categories",
    )
