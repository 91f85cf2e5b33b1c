"""The evidence a decision reads: traces, and each arm's sufficient statistics.

``ArmSummary`` and ``PairedSummary`` are what a service keeps; ``ArmArrays`` and
``PairedArrays`` hold the same fields as numpy arrays, so simulations can evaluate thousands
of trials, after every trace, in one call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Observation:
    """One trace: did it succeed, what did it cost, did it breach safety."""

    success: bool
    tokens: int
    latency_ms: int
    safety_breach: bool = False


@dataclass(frozen=True)
class ArmSummary:
    """Sufficient statistics of one arm."""

    n: int = 0
    successes: int = 0
    tokens_sum: float = 0.0
    tokens_sumsq: float = 0.0
    latency_sum: float = 0.0
    latency_sumsq: float = 0.0
    safety_breaches: int = 0

    @classmethod
    def of(cls, observations: Iterable[Observation]) -> ArmSummary:
        summary = cls()
        for observation in observations:
            summary = summary.add(observation)
        return summary

    def add(self, o: Observation) -> ArmSummary:
        return ArmSummary(
            n=self.n + 1,
            successes=self.successes + int(o.success),
            tokens_sum=self.tokens_sum + o.tokens,
            tokens_sumsq=self.tokens_sumsq + float(o.tokens) ** 2,
            latency_sum=self.latency_sum + o.latency_ms,
            latency_sumsq=self.latency_sumsq + float(o.latency_ms) ** 2,
            safety_breaches=self.safety_breaches + int(o.safety_breach),
        )


@dataclass(frozen=True)
class PairedSummary:
    """Sufficient statistics of shadow pairs: (candidate, champion) on the same task."""

    candidate: ArmSummary = ArmSummary()
    champion: ArmSummary = ArmSummary()
    candidate_only_successes: int = 0
    champion_only_successes: int = 0
    tokens_cross: float = 0.0  # Σ candidate tokens * champion tokens
    latency_cross: float = 0.0

    @classmethod
    def of(cls, pairs: Iterable[tuple[Observation, Observation]]) -> PairedSummary:
        summary = cls()
        for pair in pairs:
            summary = summary.add(pair)
        return summary

    def add(self, pair: tuple[Observation, Observation]) -> PairedSummary:
        candidate, champion = pair
        return PairedSummary(
            candidate=self.candidate.add(candidate),
            champion=self.champion.add(champion),
            candidate_only_successes=self.candidate_only_successes
            + int(candidate.success and not champion.success),
            champion_only_successes=self.champion_only_successes
            + int(champion.success and not candidate.success),
            tokens_cross=self.tokens_cross + float(candidate.tokens) * champion.tokens,
            latency_cross=self.latency_cross + float(candidate.latency_ms) * champion.latency_ms,
        )


@dataclass(frozen=True)
class ArmArrays:
    """``ArmSummary`` over numpy arrays of one shape: many arms or many moments at once."""

    n: Array
    successes: Array
    tokens_sum: Array
    tokens_sumsq: Array
    latency_sum: Array
    latency_sumsq: Array
    safety_breaches: Array

    @classmethod
    def of(cls, summary: ArmSummary) -> ArmArrays:
        return cls(
            **{f.name: np.asarray(getattr(summary, f.name), dtype=float) for f in fields(cls)}
        )


@dataclass(frozen=True)
class PairedArrays:
    candidate: ArmArrays
    champion: ArmArrays
    candidate_only_successes: Array
    champion_only_successes: Array
    tokens_cross: Array
    latency_cross: Array

    @classmethod
    def of(cls, summary: PairedSummary) -> PairedArrays:
        def f(x: float) -> Array:
            return np.asarray(x, dtype=float)

        return cls(
            ArmArrays.of(summary.candidate),
            ArmArrays.of(summary.champion),
            f(summary.candidate_only_successes),
            f(summary.champion_only_successes),
            f(summary.tokens_cross),
            f(summary.latency_cross),
        )
