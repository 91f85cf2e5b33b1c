"""The sequential test behind ``sequential_confidence_v1`` (docs/rules/trials.md, "Decision rule").

The rule is evaluated after every trace, so every bound it uses is *anytime-valid*: it holds
at every look at once, not only at a sample size fixed in advance. The method is a one-sided
normal-mixture confidence sequence (Robbins' mixture martingale, as in Howard, Ramdas,
McAuliffe and Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence
sequences"). For a contrast with estimate t and variance v (information I = 1/v),
S = (t - theta)·I is, to the central-limit approximation, a Brownian motion in information
time whatever the arms' sizes (equal arms, canary traffic, shadow pairs), provided the
traffic split does not depend on outcomes. Mixing the martingale exp(λS - λ²I/2) over a
half-normal λ of precision rho and applying Ville's inequality bounds by alpha the chance that
the estimate *ever* strays past the boundary. The boundary has no closed form; we use an
upper bound of it (from Φ(-x) ≤ ½·exp(-x²/2)), which is slightly conservative:

    half-width = √v · √((1 + r)/r) · √(2·ln(√(1 + r)/(2·alpha) + ½)),   r = I/rho.

rho is fixed in advance from the settings: the boundary is narrowest at ``n_opt`` traces per
arm (the geometric mean of the minimum and the maximum), that is r = c*·n_eff/n_opt, with
n_eff the equal-arm equivalent of the arms' sizes and c* the best ratio for alpha.

Assumptions: traces are independent within an arm; the variance is plugged in, and guarded for
small Bernoulli samples by Agresti-Caffo smoothing (one success and one failure added to each
arm, the variance never below the pooled one) or, for shadow pairs, Agresti-Min's half count
per cell; stopping at the maximum truncates the sequence, which only makes it conservative.

Promotion is an intersection-union test: success better (lower bound > 0) *and* tokens and
latency non-inferior (upper bound of candidate mean - (1 + margin)·champion mean ≤ 0), each at
alpha, so a promotion that is false on any of them happens at most alpha of the time.

``verdict_codes`` and ``verdict_codes_paired`` apply the rule to arrays (simulations);
``decide`` and ``decide_paired`` (``.rule``) apply it to one evaluation and explain it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from .arms import ArmArrays, Array, PairedArrays


class Verdict(StrEnum):
    CONTINUE = "continue"
    PROMOTE = "promote"
    PRUNE = "prune"
    INCONCLUSIVE = "inconclusive"


# ``verdict_codes`` returns indexes into this tuple.
VERDICTS = (Verdict.CONTINUE, Verdict.PROMOTE, Verdict.PRUNE, Verdict.INCONCLUSIVE)
CONTINUE, PROMOTE, PRUNE, INCONCLUSIVE = range(4)


@dataclass(frozen=True)
class DecisionSettings:
    """Pre-registered on the trial (``trials.models.Trial``) when it is queued."""

    alpha: float = 0.05
    indifference_margin: float = 0.05
    min_traces_per_arm: int = 20
    max_traces_per_arm: int = 200
    token_margin: float = 0.25
    latency_margin: float = 0.5

    @property
    def n_opt(self) -> float:
        """Traces per arm where the confidence sequence is tightest."""
        return math.sqrt(max(self.min_traces_per_arm, 1) * max(self.max_traces_per_arm, 1))


# --- the confidence sequence ---


def _half_width_z(r: Array | float, alpha: float) -> Array:
    """The boundary in standard errors at r = I/rho (see the module docstring)."""
    r = np.asarray(r, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.sqrt((1 + r) / r) * np.sqrt(2 * np.log(np.sqrt(1 + r) / (2 * alpha) + 0.5))
    return np.where(r > 0, z, np.inf)


@lru_cache(maxsize=64)
def _best_ratio(alpha: float) -> float:
    """c* = I/rho where the boundary is narrowest, found once per alpha."""
    from scipy import optimize  # type: ignore[import-untyped]  # slow to import: only when deciding

    result = optimize.minimize_scalar(
        lambda log_r: float(_half_width_z(math.exp(log_r), alpha)),
        bounds=(-5.0, 10.0),
        method="bounded",
    )
    return math.exp(float(result.x))


class _Contrast(NamedTuple):
    estimate: Array  # the (smoothed) estimate of the contrast
    variance: Array  # its plug-in variance
    n_eff: Array  # equal-arm equivalent traces per arm

    def bounds(self, settings: DecisionSettings) -> tuple[Array, Array]:
        """Anytime-valid one-sided (lower, upper) bounds, each at level alpha."""
        r = _best_ratio(settings.alpha) * self.n_eff / settings.n_opt
        with np.errstate(invalid="ignore"):
            half = np.where(self.variance > 0, _half_width_z(r, settings.alpha), 0.0) * np.sqrt(
                self.variance
            )
        half = np.where(np.isfinite(self.variance) & (self.n_eff > 0), half, np.inf)
        return self.estimate - half, self.estimate + half


def _success_two_sample(candidate: ArmArrays, champion: ArmArrays) -> _Contrast:
    """Agresti-Caffo: a success and a failure added to each arm, for centre and variance.

    The variance is never below the pooled one, the exact variance when the arms are equal:
    an arm on a lucky streak near 0 or 1 must not shrink its own error bar (Wald's flaw).
    """
    n_c, n_h = candidate.n + 2, champion.n + 2
    rate_c = (candidate.successes + 1) / n_c
    rate_h = (champion.successes + 1) / n_h
    pooled = (candidate.successes + champion.successes + 2) / (n_c + n_h)
    var_c, var_h = rate_c * (1 - rate_c), rate_h * (1 - rate_h)
    unpooled = var_c / n_c + var_h / n_h
    variance = np.maximum(unpooled, pooled * (1 - pooled) * (1 / n_c + 1 / n_h))
    return _Contrast(rate_c - rate_h, variance, (var_c + var_h) / unpooled)


def _success_paired(paired: PairedArrays) -> _Contrast:
    """Agresti-Min: half a count added to each of the four cells of the pairs' table."""
    n = paired.candidate.n + 2
    wins = paired.candidate_only_successes + 0.5
    losses = paired.champion_only_successes + 0.5
    estimate = (wins - losses) / n
    variance = ((wins + losses) / n - estimate**2) / n
    return _Contrast(estimate, variance, paired.candidate.n)


def _moments(total: Array, total_sq: Array, n: Array) -> tuple[Array, Array]:
    """Mean and unbiased variance; infinite variance below two traces (it cannot be judged)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, total / n, 0.0)
        var = np.where(n > 1, np.maximum(total_sq - n * mean**2, 0.0) / (n - 1), np.inf)
    return mean, var


def _excess_two_sample(
    candidate: tuple[Array, Array, Array], champion: tuple[Array, Array, Array], factor: float
) -> _Contrast:
    """candidate mean - factor * champion mean, from (sum, sum of squares, n) per arm."""
    (mean_c, var_c), (mean_h, var_h) = _moments(*candidate), _moments(*champion)
    n_c, n_h = candidate[2], champion[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = var_c / n_c + factor**2 * var_h / n_h
        n_eff = np.where(
            variance > 0, (var_c + factor**2 * var_h) / variance, 2 / (1 / n_c + 1 / n_h)
        )
    return _Contrast(mean_c - factor * mean_h, variance, n_eff)


def _excess_paired(
    candidate: tuple[Array, Array], champion: tuple[Array, Array], cross: Array, n: Array, k: float
) -> _Contrast:
    """mean of (candidate - k * champion) over pairs, from sums, squares and the cross sum."""
    total = candidate[0] - k * champion[0]
    total_sq = candidate[1] + k**2 * champion[1] - 2 * k * cross
    mean, var = _moments(total, total_sq, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _Contrast(mean, var / n, n)


class Assessment(NamedTuple):
    success: _Contrast
    success_bounds: tuple[Array, Array]
    guardrails: dict[str, tuple[_Contrast, tuple[Array, Array]]]
    codes: npt.NDArray[np.int8]


def _assess(
    candidate: ArmArrays,
    champion: ArmArrays,
    success: _Contrast,
    guardrails: dict[str, _Contrast],
    settings: DecisionSettings,
    deadline_passed: bool,
) -> Assessment:
    lower, upper = success.bounds(settings)
    lower, upper = np.maximum(lower, -1.0), np.minimum(upper, 1.0)  # a gain in rate is in [-1, 1]
    guard_bounds = {name: (c, c.bounds(settings)) for name, c in guardrails.items()}
    guards_pass = np.logical_and.reduce([b[1] <= 0 for _, b in guard_bounds.values()])
    enough = (candidate.n >= settings.min_traces_per_arm) & (
        champion.n >= settings.min_traces_per_arm
    )
    stopped = (candidate.n >= settings.max_traces_per_arm) | deadline_passed
    codes = np.select(
        [
            candidate.safety_breaches > 0,
            enough & (lower > 0) & guards_pass,
            enough & (upper < max(0.0, settings.indifference_margin)),  # worse, or futile
            stopped,
        ],
        [PRUNE, PROMOTE, PRUNE, INCONCLUSIVE],
        CONTINUE,
    ).astype(np.int8)
    return Assessment(success, (lower, upper), guard_bounds, codes)


def assess_two_sample(
    candidate: ArmArrays, champion: ArmArrays, settings: DecisionSettings, deadline: bool
) -> Assessment:
    c, h = candidate, champion
    guardrails = {
        "tokens": _excess_two_sample(
            (c.tokens_sum, c.tokens_sumsq, c.n),
            (h.tokens_sum, h.tokens_sumsq, h.n),
            1 + settings.token_margin,
        ),
        "latency": _excess_two_sample(
            (c.latency_sum, c.latency_sumsq, c.n),
            (h.latency_sum, h.latency_sumsq, h.n),
            1 + settings.latency_margin,
        ),
    }
    return _assess(c, h, _success_two_sample(c, h), guardrails, settings, deadline)


def assess_paired(paired: PairedArrays, settings: DecisionSettings, deadline: bool) -> Assessment:
    c, h, n = paired.candidate, paired.champion, paired.candidate.n
    guardrails = {
        "tokens": _excess_paired(
            (c.tokens_sum, c.tokens_sumsq),
            (h.tokens_sum, h.tokens_sumsq),
            paired.tokens_cross,
            n,
            1 + settings.token_margin,
        ),
        "latency": _excess_paired(
            (c.latency_sum, c.latency_sumsq),
            (h.latency_sum, h.latency_sumsq),
            paired.latency_cross,
            n,
            1 + settings.latency_margin,
        ),
    }
    return _assess(c, h, _success_paired(paired), guardrails, settings, deadline)


def verdict_codes(
    candidate: ArmArrays,
    champion: ArmArrays,
    settings: DecisionSettings,
    *,
    deadline_passed: bool = False,
) -> npt.NDArray[np.int8]:
    """``decide`` over arrays: the verdict's index in ``VERDICTS`` for every element."""
    return assess_two_sample(candidate, champion, settings, deadline_passed).codes


def verdict_codes_paired(
    paired: PairedArrays, settings: DecisionSettings, *, deadline_passed: bool = False
) -> npt.NDArray[np.int8]:
    """``decide_paired`` over arrays."""
    return assess_paired(paired, settings, deadline_passed).codes
