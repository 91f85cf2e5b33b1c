"""The decision rule on seeded simulations with known true rates, evaluated after every trace.

``pytest -s`` prints the measured rates. 1,000 trials per scenario: a measured false-promotion
rate of 5% would sit about 3 standard errors above the rule's true rate (about 2%, see
docs/rules/trials.md), so these bounds are not tuned to the seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.trials.domain.simulation import Outcomes, simulate_arms, simulate_pairs
from trials.domain.decision import (
    VERDICTS,
    ArmArrays,
    ArmSummary,
    DecisionSettings,
    Observation,
    decide,
    verdict_codes,
)

# A thousand seeded trials per scenario: seconds for the file, so it runs with the slow tests
# (test_decision.py checks the rule and its array form in the fast run).
pytestmark = pytest.mark.slow

ALPHA = DecisionSettings().alpha
EQUAL_ARMS, CANARY = 0.5, 0.1  # the candidate's share of the traces


def report(label: str, outcomes: Outcomes) -> None:
    print(f"\n{label}: {outcomes}")


@pytest.mark.parametrize("rate", [0.5, 0.8])
@pytest.mark.parametrize("share", [EQUAL_ARMS, CANARY], ids=["equal_arms", "canary"])
def test_a_candidate_equal_to_the_champion_is_promoted_in_at_most_alpha(rate, share):
    outcomes = simulate_arms(
        candidate_rate=rate, champion_rate=rate, candidate_share=share, seed=11
    )
    report(f"equal p={rate}, candidate share {share}", outcomes)
    assert outcomes.promoted <= ALPHA


@pytest.mark.parametrize("share", [EQUAL_ARMS, CANARY], ids=["equal_arms", "canary"])
def test_a_clearly_better_candidate_is_promoted_in_most_trials(share):
    outcomes = simulate_arms(candidate_rate=0.7, champion_rate=0.5, candidate_share=share, seed=12)
    report(f"better 0.7 vs 0.5, candidate share {share}", outcomes)
    assert outcomes.promoted > 0.5
    assert outcomes.pruned == 0


def test_a_clearly_worse_candidate_is_pruned_and_almost_never_promoted():
    outcomes = simulate_arms(
        candidate_rate=0.3, champion_rate=0.5, candidate_share=EQUAL_ARMS, seed=13
    )
    report("worse 0.3 vs 0.5, equal arms", outcomes)
    assert outcomes.pruned > 0.5
    assert outcomes.promoted <= 0.01


def test_a_better_candidate_using_twice_the_tokens_is_never_promoted():
    outcomes = simulate_arms(
        candidate_rate=0.7,
        champion_rate=0.5,
        candidate_share=EQUAL_ARMS,
        seed=14,
        candidate_token_factor=2.0,
    )
    report("better 0.7 vs 0.5 but 2x tokens", outcomes)
    assert outcomes.promoted == 0


def test_a_much_better_candidate_right_at_the_token_margin_is_promoted_in_at_most_alpha():
    # Success is no obstacle here (0.9 vs 0.5), so every promotion is the token guardrail
    # passing a candidate that is exactly 25% dearer: its own false-pass rate.
    outcomes = simulate_arms(
        candidate_rate=0.9,
        champion_rate=0.5,
        candidate_share=EQUAL_ARMS,
        seed=15,
        candidate_token_factor=1 + DecisionSettings().token_margin,
    )
    report("much better but exactly at the token margin", outcomes)
    assert outcomes.promoted <= ALPHA


@pytest.mark.parametrize("rate", [0.5, 0.8])
def test_shadow_pairs_of_equal_genomes_are_promoted_in_at_most_alpha(rate):
    outcomes = simulate_pairs(candidate_rate=rate, champion_rate=rate, seed=21)
    report(f"shadow pairs, equal p={rate}", outcomes)
    assert outcomes.promoted <= ALPHA


def test_shadow_pairs_of_a_clearly_better_candidate_are_mostly_promoted():
    outcomes = simulate_pairs(candidate_rate=0.7, champion_rate=0.5, seed=22)
    report("shadow pairs, better 0.7 vs 0.5", outcomes)
    assert outcomes.promoted > 0.5


def test_the_simulations_run_the_same_rule_as_decide_trace_by_trace():
    # Twenty trials fed one trace at a time through ArmSummary.add and decide() must reach
    # exactly the verdicts the array form gives at every moment.
    rng = np.random.default_rng(31)
    settings = DecisionSettings(min_traces_per_arm=5, max_traces_per_arm=60)
    for _ in range(20):
        arms = [ArmSummary(), ArmSummary()]
        history: list[tuple[ArmSummary, ArmSummary]] = []
        for _ in range(100):
            arm = int(rng.random() < 0.5)
            trace = Observation(
                success=bool(rng.random() < (0.75, 0.45)[arm]),
                tokens=int(rng.integers(500, 1500)),
                latency_ms=int(rng.integers(200, 2000)),
            )
            arms[arm] = arms[arm].add(trace)
            history.append((arms[0], arms[1]))
        scalar = [decide(c, h, settings).verdict for c, h in history]
        stacked = [
            ArmArrays(*(np.array([getattr(s[i], f) for s in history], dtype=float) for f in FIELDS))
            for i in (0, 1)
        ]
        vector = [VERDICTS[code] for code in verdict_codes(stacked[0], stacked[1], settings)]
        assert scalar == vector


FIELDS = (
    "n",
    "successes",
    "tokens_sum",
    "tokens_sumsq",
    "latency_sum",
    "latency_sumsq",
    "safety_breaches",
)
