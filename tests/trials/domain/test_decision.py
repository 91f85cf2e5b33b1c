"""The decision rule's behaviour on hand-built evidence (simulations: test_decision_simulations)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from trials.domain.decision import (
    REFERENCE_RULE,
    RULE,
    VERDICTS,
    ArmArrays,
    ArmSummary,
    DecisionSettings,
    Observation,
    Verdict,
    decide,
    decide_paired,
    reference_decision,
    significantly_worse,
    verdict_codes,
    wilson_interval,
)

SETTINGS = DecisionSettings()


def arm(successes: int, failures: int, *, tokens: int = 1000, latency_ms: int = 800) -> ArmSummary:
    """An arm whose costs vary a little around the given means, as real traces do."""
    traces = [
        Observation(
            success=i < successes, tokens=tokens + (i % 5 - 2) * tokens // 20, latency_ms=latency_ms
        )
        for i in range(successes + failures)
    ]
    return ArmSummary.of(traces)


BETTER, WORSE = arm(45, 5), arm(20, 30)  # 90% against 40%: decisive at 50 traces per arm


# --- Wilson intervals ---


def test_the_wilson_interval_matches_published_values():
    # 8 of 10 at 95%: 0.4902 to 0.9433; 0 of 10: 0 to 0.2775 (Wilson 1927; Newcombe 1998).
    low, high = wilson_interval(8, 10, 0.95)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    low, high = wilson_interval(0, 10, 0.95)
    assert (low, round(high, 4)) == (0.0, 0.2775)


Z = {
    0.8: 1.2815515655446004,
    0.9: 1.6448536269514722,
    0.95: 1.959963984540054,
    0.99: 2.5758293035489004,
}
counts = st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@given(counts, st.sampled_from(sorted(Z)))
def test_the_wilson_interval_is_the_roots_of_the_score_equation(count, confidence):
    # Independently: the bounds are the p solving (rate - p)^2 = z^2 p (1 - p) / n.
    (successes, n), z = count, Z[confidence]
    rate = successes / n
    a, b, c = 1 + z * z / n, -(2 * rate + z * z / n), rate * rate
    root = math.sqrt(max(b * b - 4 * a * c, 0.0))
    expected = ((-b - root) / (2 * a), (-b + root) / (2 * a))
    assert np.allclose(wilson_interval(successes, n, confidence), expected, atol=1e-9)


def test_the_wilson_interval_of_no_data_is_everything():
    assert wilson_interval(0, 0, 0.9) == (0.0, 1.0)


# --- never promote on too little evidence ---


def test_it_never_promotes_on_zero_data():
    decision = decide(ArmSummary(), ArmSummary(), SETTINGS)
    assert decision.verdict == Verdict.CONTINUE
    assert "20 more candidate and 20 more champion" in decision.reason


def test_it_never_promotes_below_the_minimum_and_says_how_many_more_are_needed():
    perfect, hopeless = arm(19, 0), arm(0, 19)
    decision = decide(perfect, hopeless, SETTINGS)
    assert decision.verdict == Verdict.CONTINUE
    assert "1 more candidate and 1 more champion" in decision.reason
    assert decision.numbers["traces_needed"] == {"candidate": 1, "champion": 1}


def test_a_perfect_start_against_a_near_perfect_champion_does_not_promote():
    # 20/20 against 19/20: the smoothed variance keeps a lucky streak from exploding.
    assert decide(arm(20, 0), arm(19, 1), SETTINGS).verdict == Verdict.CONTINUE


def test_a_single_lucky_success_promotes_under_the_reference_rule_only():
    # The reference's flaw: nine neutral tasks and one success scoring about 1 promote.
    scores = [1.0] + [0.0] * 9
    assert reference_decision(scores).verdict == Verdict.PROMOTE
    assert reference_decision(scores).rule == REFERENCE_RULE
    assert reference_decision([1.0], min_tasks=1).verdict == Verdict.PROMOTE
    # The same evidence under the real rule, even against a champion that never succeeded.
    lucky = decide(arm(1, 9), arm(0, 10), SETTINGS)
    assert lucky.verdict == Verdict.CONTINUE


def test_the_reference_rule_keeps_its_thresholds():
    assert reference_decision([5.0] * 9).verdict == Verdict.CONTINUE
    assert reference_decision([5.0] * 9).numbers["total"] == 0.0
    assert reference_decision([-1.0] * 10).verdict == Verdict.PRUNE
    assert reference_decision([0.05] * 10).verdict == Verdict.CONTINUE


# --- safety ---


def test_a_safety_breach_prunes_even_a_much_better_candidate():
    breached = BETTER.add(
        Observation(success=True, tokens=1000, latency_ms=800, safety_breach=True)
    )
    decision = decide(breached, WORSE, SETTINGS)
    assert decision.verdict == Verdict.PRUNE
    assert "safety breach" in decision.reason
    assert decision.numbers["safety_breaches"]["candidate"] == 1


def test_a_safety_breach_prunes_before_the_minimum_too():
    first = ArmSummary().add(Observation(success=True, tokens=1, latency_ms=1, safety_breach=True))
    assert decide(first, ArmSummary(), SETTINGS).verdict == Verdict.PRUNE


def test_a_breach_in_the_champion_arm_does_not_prune_the_candidate():
    champion = WORSE.add(
        Observation(success=False, tokens=1000, latency_ms=800, safety_breach=True)
    )
    assert decide(BETTER, champion, SETTINGS).verdict == Verdict.PROMOTE


# --- promote, prune, inconclusive ---


def test_it_promotes_a_clearly_better_candidate_with_the_numbers_it_used():
    decision = decide(BETTER, WORSE, SETTINGS)
    assert decision.verdict == Verdict.PROMOTE
    assert decision.rule == RULE
    numbers = decision.numbers
    assert numbers["arms"]["candidate"]["n"] == 50
    assert numbers["arms"]["candidate"]["rate"] == 0.9
    low, high = numbers["arms"]["champion"]["wilson"]
    assert low < 0.4 < high
    assert 0 < numbers["difference"]["lower"] < 0.5 < numbers["difference"]["upper"]
    assert [g["name"] for g in numbers["guardrails"]] == ["tokens", "latency"]
    assert all(g["passed"] for g in numbers["guardrails"])
    assert numbers["settings"]["alpha"] == 0.05


def test_it_prunes_a_clearly_worse_candidate():
    decision = decide(WORSE, BETTER, SETTINGS)
    assert decision.verdict == Verdict.PRUNE
    assert "less often" in decision.reason


def test_it_prunes_a_futile_candidate_that_cannot_be_better_by_the_margin():
    # 2,000 traces each at the same rate: the gain is pinned near 0, below the 0.1 margin.
    settings = DecisionSettings(indifference_margin=0.1, max_traces_per_arm=5000)
    decision = decide(arm(1000, 1000), arm(1000, 1000), settings)
    assert decision.verdict == Verdict.PRUNE
    assert decision.numbers["difference"]["lower"] < 0 < decision.numbers["difference"]["upper"]
    assert "futile" in decision.reason


def test_an_undecided_trial_at_the_maximum_is_inconclusive_and_waits_for_an_operator():
    settings = DecisionSettings(max_traces_per_arm=40)
    decision = decide(arm(24, 16), arm(22, 18), settings)
    assert decision.verdict == Verdict.INCONCLUSIVE
    assert "operator" in decision.reason


def test_an_undecided_trial_past_its_deadline_is_inconclusive():
    undecided = decide(arm(24, 16), arm(22, 18), SETTINGS)
    assert undecided.verdict == Verdict.CONTINUE
    late = decide(arm(24, 16), arm(22, 18), SETTINGS, deadline_passed=True)
    assert late.verdict == Verdict.INCONCLUSIVE
    assert "deadline" in late.reason


def test_a_deadline_with_too_little_data_is_inconclusive_never_a_promotion():
    decision = decide(arm(5, 0), arm(0, 5), SETTINGS, deadline_passed=True)
    assert decision.verdict == Verdict.INCONCLUSIVE


def test_a_decisive_trial_is_decided_even_at_its_deadline():
    assert decide(BETTER, WORSE, SETTINGS, deadline_passed=True).verdict == Verdict.PROMOTE


def test_a_large_champion_arm_alone_does_not_end_a_canary():
    # The maximum bounds the candidate's exposure; the champion's arm may be much larger.
    decision = decide(arm(12, 8), arm(600, 400), SETTINGS)
    assert decision.verdict == Verdict.CONTINUE


# --- guardrails ---


def test_a_better_candidate_using_twice_the_tokens_is_not_promoted():
    dear = arm(45, 5, tokens=2000)
    decision = decide(dear, WORSE, SETTINGS)
    assert decision.verdict == Verdict.CONTINUE
    assert "tokens guardrail" in decision.reason
    tokens = decision.numbers["guardrails"][0]
    assert tokens["name"] == "tokens" and not tokens["passed"]
    assert tokens["candidate_mean"] == 2000 and tokens["champion_mean"] == 1000
    assert tokens["limit"] == 1250 and tokens["bound"] > 0


def test_a_slower_candidate_beyond_the_latency_margin_is_not_promoted():
    slow = arm(45, 5, latency_ms=2000)
    decision = decide(slow, WORSE, SETTINGS)
    assert decision.verdict != Verdict.PROMOTE
    assert "latency guardrail" in decision.reason


def test_a_champion_using_no_tokens_allows_a_candidate_using_none():
    free = decide(arm(45, 5, tokens=0), arm(20, 30, tokens=0), SETTINGS)
    assert free.verdict == Verdict.PROMOTE


def test_a_champion_using_no_tokens_blocks_a_candidate_that_uses_some():
    decision = decide(arm(45, 5, tokens=100), arm(20, 30, tokens=0), SETTINGS)
    assert decision.verdict == Verdict.CONTINUE
    assert "tokens guardrail" in decision.reason


# --- shadow pairs ---


def trace(success: bool, tokens: int = 1000) -> Observation:
    return Observation(success=success, tokens=tokens, latency_ms=900)


def test_paired_shadow_runs_promote_a_candidate_that_wins_the_discordant_tasks():
    pairs = [(trace(True), trace(True))] * 20 + [(trace(True), trace(False))] * 15
    decision = decide_paired(pairs, SETTINGS)
    assert decision.verdict == Verdict.PROMOTE
    assert decision.numbers["design"] == "paired"
    assert decision.numbers["pairs"]["candidate_only_successes"] == 15


def test_paired_shadow_runs_wait_for_the_minimum_number_of_pairs():
    pairs = [(trace(True), trace(False))] * 19
    decision = decide_paired(pairs, SETTINGS)
    assert decision.verdict == Verdict.CONTINUE
    assert "1 more candidate" in decision.reason


def test_paired_shadow_runs_prune_on_a_candidate_breach():
    breach = Observation(success=True, tokens=1, latency_ms=1, safety_breach=True)
    assert decide_paired([(breach, trace(False))], SETTINGS).verdict == Verdict.PRUNE


def test_paired_shadow_runs_with_twice_the_tokens_are_not_promoted():
    pairs = [(trace(True, 2000 + i), trace(False, 1000 + i)) for i in range(40)]
    decision = decide_paired(pairs, SETTINGS)
    assert decision.verdict == Verdict.CONTINUE
    assert "tokens guardrail" in decision.reason


def test_paired_shadow_runs_of_identical_genomes_do_not_promote():
    pairs = [(trace(i % 3 != 0), trace(i % 3 != 0)) for i in range(200)]
    assert decide_paired(pairs, SETTINGS).verdict != Verdict.PROMOTE


# --- invariants for all evidence ---

observations = st.builds(
    Observation,
    success=st.booleans(),
    tokens=st.integers(0, 5000),
    latency_ms=st.integers(0, 10000),
)
arms = st.lists(observations, max_size=60).map(ArmSummary.of)
settings = st.builds(
    DecisionSettings,
    alpha=st.sampled_from([0.01, 0.05, 0.1]),
    min_traces_per_arm=st.integers(1, 30),
    max_traces_per_arm=st.integers(30, 80),
)


@given(arms, arms, settings, st.booleans())
def test_it_never_promotes_an_arm_below_the_minimum(candidate, champion, chosen, late):
    decision = decide(candidate, champion, chosen, deadline_passed=late)
    if min(candidate.n, champion.n) < chosen.min_traces_per_arm:
        assert decision.verdict != Verdict.PROMOTE


@given(arms, arms, settings, st.booleans())
def test_every_decision_is_json_ready_and_agrees_with_the_array_form(
    candidate, champion, chosen, late
):
    decision = decide(candidate, champion, chosen, deadline_passed=late)
    assert json.loads(json.dumps(decision.to_json(), allow_nan=False))["verdict"] == (
        decision.verdict.value
    )
    code = verdict_codes(
        ArmArrays.of(candidate), ArmArrays.of(champion), chosen, deadline_passed=late
    )
    assert VERDICTS[int(code)] == decision.verdict
    low, high = decision.numbers["difference"]["lower"], decision.numbers["difference"]["upper"]
    if low is not None and high is not None:
        assert -1 <= low <= high <= 1


@given(arms, arms, settings, st.integers(1, 3))
def test_any_candidate_breach_prunes_whatever_else_the_evidence_says(
    candidate, champion, chosen, breaches
):
    breached = replace(candidate, safety_breaches=breaches)
    assert decide(breached, champion, chosen).verdict == Verdict.PRUNE


def test_summaries_add_up_the_traces():
    summary = ArmSummary.of(
        [Observation(True, 10, 100), Observation(False, 30, 300, safety_breach=True)]
    )
    assert summary == ArmSummary(
        n=2,
        successes=1,
        tokens_sum=40,
        tokens_sumsq=1000,
        latency_sum=400,
        latency_sumsq=100000,
        safety_breaches=1,
    )


def test_significantly_worse_is_what_a_watch_window_rolls_back_on():
    settings = DecisionSettings()
    bad = ArmSummary.of([Observation(success=False, tokens=10, latency_ms=5)] * 60)
    good = ArmSummary.of([Observation(success=True, tokens=10, latency_ms=5)] * 60)
    assert significantly_worse(decide(bad, good, settings))
    assert not significantly_worse(decide(good, good, settings))
    assert not significantly_worse(decide(good, bad, settings))
    breach = ArmSummary.of([Observation(success=True, tokens=10, latency_ms=5, safety_breach=True)])
    assert significantly_worse(decide(breach, good, settings))
