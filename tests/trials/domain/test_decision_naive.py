"""The comparison policies (benchmarks only): a naive fixed-sample test and a random control."""

from __future__ import annotations

import pytest

from trials.domain.decision import ArmSummary, DecisionSettings, Observation, Verdict
from trials.domain.decision.naive import coin, comparison_decision, naive_decision, random_decision

SETTINGS = DecisionSettings()


def arm(successes: int, failures: int, tokens: int = 100, breaches: int = 0) -> ArmSummary:
    observations = [Observation(True, tokens + i % 3, 50 + i % 5) for i in range(successes)]
    observations += [Observation(False, tokens + i % 3, 50 + i % 5) for i in range(failures)]
    observations += [Observation(False, tokens, 50, safety_breach=True)] * breaches
    return ArmSummary.of(observations)


def test_the_naive_test_promotes_a_clear_gain_within_the_guardrails():
    assert naive_decision(arm(30, 10), arm(15, 25), SETTINGS).verdict == Verdict.PROMOTE


def test_the_naive_test_holds_a_gain_that_costs_too_many_tokens():
    assert (
        naive_decision(arm(30, 10, tokens=200), arm(15, 25), SETTINGS).verdict == Verdict.CONTINUE
    )


def test_the_naive_test_prunes_a_clear_loss_and_any_breach():
    assert naive_decision(arm(10, 30), arm(25, 15), SETTINGS).verdict == Verdict.PRUNE
    assert naive_decision(arm(1, 0, breaches=1), arm(0, 1), SETTINGS).verdict == Verdict.PRUNE


def test_the_naive_test_waits_for_the_minimum_and_ends_inconclusive_at_the_end():
    assert naive_decision(arm(19, 0), arm(0, 19), SETTINGS).verdict == Verdict.CONTINUE
    end = naive_decision(arm(20, 20), arm(20, 20), SETTINGS, deadline_passed=True)
    assert end.verdict == Verdict.INCONCLUSIVE


def test_the_random_control_follows_its_coin_at_the_minimum():
    for key in ("a", "b", "c", "d"):
        decision = random_decision(arm(10, 10), arm(10, 10), SETTINGS, key=key)
        assert decision.verdict == (Verdict.PROMOTE if coin(key) else Verdict.PRUNE)
    assert random_decision(arm(5, 5), arm(10, 10), SETTINGS, key="a").verdict == Verdict.CONTINUE


def test_the_reference_rule_ends_inconclusive_once_exhausted_and_undecided():
    decision = comparison_decision(
        "reference_absolute_v1", arm(5, 5), arm(5, 5), [1.0, -1.0] * 5, SETTINGS, key="k",
        deadline_passed=True,
    )  # fmt: skip
    assert decision.verdict == Verdict.INCONCLUSIVE


def test_an_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown decision rule"):
        comparison_decision("nope", arm(1, 1), arm(1, 1), [], SETTINGS, key="k")
