"""Seeded simulations of whole trials for the decision rule's tests.

Each simulation draws every trace of many trials at once (numpy, fixed seed), accumulates each
arm's sufficient statistics after every trace and applies the rule at every one of those
moments (``verdict_codes``, the same code ``decide`` runs). A trial's outcome is its first
verdict other than continue; the rule itself says inconclusive at the maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trials.domain.decision import (
    CONTINUE,
    INCONCLUSIVE,
    PROMOTE,
    PRUNE,
    ArmArrays,
    DecisionSettings,
    PairedArrays,
    verdict_codes,
    verdict_codes_paired,
)

CHUNK = 200  # trials evaluated together: bounds the memory of the (trials x traces) arrays


@dataclass(frozen=True)
class Outcomes:
    trials: int
    promoted: float
    pruned: float
    inconclusive: float
    mean_candidate_traces: float

    def __str__(self) -> str:
        return (
            f"promoted {self.promoted:.1%}, pruned {self.pruned:.1%}, inconclusive "
            f"{self.inconclusive:.1%} of {self.trials}; candidate traces at the end "
            f"{self.mean_candidate_traces:.0f} on average"
        )


def simulate_arms(
    *,
    candidate_rate: float,
    champion_rate: float,
    candidate_share: float,
    seed: int,
    trials: int = 1000,
    settings: DecisionSettings | None = None,
    candidate_token_factor: float = 1.0,
) -> Outcomes:
    """Two arms on the same kind of work; each trace goes to the candidate with
    ``candidate_share`` (0.5: equal arms; 0.1: a canary, about 9 champion traces per
    candidate trace)."""
    settings = settings or DecisionSettings()
    rng = np.random.default_rng(seed)
    traces = math.ceil(settings.max_traces_per_arm / candidate_share * 1.3) + 50
    finals, lengths = [], []
    for size in _chunks(trials):
        shape = (size, traces)
        to_candidate = rng.random(shape) < candidate_share
        rate = np.where(to_candidate, candidate_rate, champion_rate)
        success = rng.random(shape) < rate
        tokens = rng.gamma(11.1, 1000 / 11.1, shape)  # mean 1000, CV 0.3
        tokens *= np.where(to_candidate, candidate_token_factor, 1.0)
        latency = rng.gamma(4.0, 250.0, shape)  # mean 1000 ms, CV 0.5
        candidate = _cumulative(to_candidate, success, tokens, latency)
        champion = _cumulative(~to_candidate, success, tokens, latency)
        final, at = _first_verdict(verdict_codes(candidate, champion, settings))
        finals.append(final)
        lengths.append(np.take_along_axis(candidate.n, at[:, None], axis=1)[:, 0])
    return _outcomes(np.concatenate(finals), np.concatenate(lengths))


def simulate_pairs(
    *,
    candidate_rate: float,
    champion_rate: float,
    seed: int,
    shared: float = 0.5,
    trials: int = 1000,
    settings: DecisionSettings | None = None,
) -> Outcomes:
    """Shadow mode: both genomes on every task. With probability ``shared`` the task's own
    difficulty decides both outcomes (one uniform draw against both rates), otherwise they
    are independent, so the pairs are positively correlated as real shadow runs are."""
    settings = settings or DecisionSettings()
    rng = np.random.default_rng(seed)
    traces = settings.max_traces_per_arm
    finals, lengths = [], []
    for size in _chunks(trials):
        shape = (size, traces)
        common, draw = rng.random(shape) < shared, rng.random(shape)
        won = np.where(common, draw < candidate_rate, rng.random(shape) < candidate_rate)
        held = np.where(common, draw < champion_rate, rng.random(shape) < champion_rate)
        task_size = rng.gamma(11.1, 1 / 11.1, shape)  # the task's size drives both costs
        tokens_c = 1000 * task_size * rng.gamma(25.0, 1 / 25, shape)
        tokens_h = 1000 * task_size * rng.gamma(25.0, 1 / 25, shape)
        latency_c, latency_h = rng.gamma(4.0, 250.0, shape), rng.gamma(4.0, 250.0, shape)
        every = np.ones(shape, dtype=bool)
        paired = PairedArrays(
            _cumulative(every, won, tokens_c, latency_c),
            _cumulative(every, held, tokens_h, latency_h),
            np.cumsum(won & ~held, axis=1, dtype=float),
            np.cumsum(held & ~won, axis=1, dtype=float),
            np.cumsum(tokens_c * tokens_h, axis=1),
            np.cumsum(latency_c * latency_h, axis=1),
        )
        final, at = _first_verdict(verdict_codes_paired(paired, settings))
        finals.append(final)
        lengths.append(at + 1.0)
    return _outcomes(np.concatenate(finals), np.concatenate(lengths))


def _chunks(trials: int) -> list[int]:
    return [min(CHUNK, trials - start) for start in range(0, trials, CHUNK)]


def _cumulative(
    mine: np.ndarray, success: np.ndarray, tokens: np.ndarray, latency: np.ndarray
) -> ArmArrays:
    """The arm's statistics after every trace of the trial (the other arm's traces included)."""
    mask = mine.astype(float)

    def running(values: np.ndarray) -> np.ndarray:
        return np.cumsum(values * mask, axis=1)

    return ArmArrays(
        n=running(np.ones_like(mask)),
        successes=running(success.astype(float)),
        tokens_sum=running(tokens),
        tokens_sumsq=running(tokens**2),
        latency_sum=running(latency),
        latency_sumsq=running(latency**2),
        safety_breaches=np.zeros_like(mask),
    )


def _first_verdict(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each trial's first verdict other than continue, and the trace it came at."""
    ended = codes != CONTINUE
    assert ended.any(axis=1).all(), "a simulated trial ran out of traces before its maximum"
    at = ended.argmax(axis=1)
    return codes[np.arange(len(codes)), at], at


def _outcomes(finals: np.ndarray, lengths: np.ndarray) -> Outcomes:
    return Outcomes(
        trials=len(finals),
        promoted=float(np.mean(finals == PROMOTE)),
        pruned=float(np.mean(finals == PRUNE)),
        inconclusive=float(np.mean(finals == INCONCLUSIVE)),
        mean_candidate_traces=float(np.mean(lengths)),
    )
