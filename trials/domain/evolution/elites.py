"""Elite parents, re-evaluated against the current champion before they seed a generation.

An ended trial is an elite only when the decision rule decided it against the champion on
its pre-registered evidence, so a single lucky score can never make one:

1. it ended **promoted** or **pruned**, and its recorded decision is the sequential rule's
   verdict for that ending (an operator's override of an inconclusive trial is not);
2. the candidate had no safety breach, and both arms reached the trial's minimum of traces;
3. its score is the **gain over the champion** its trial measured: the lower bound of the
   success-rate difference (candidate - champion), anytime-valid, so a short lucky streak
   has a wide interval and ranks low; ties by the estimate, then the most recently ended;
4. it still speaks about the current champion: the champion descends from the trial's
   base, or else its patch still applies to the champion and its trial ended within
   ``elite_evidence_max_age_days``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from organization.genome import GenomeError, OrganizationalGenome, apply_patch, parse_patch
from trials.domain.decision import RULE, Verdict
from trials.domain.evolution.model import (
    PROMOTED,
    PRUNED,
    Elite,
    EvolutionPolicy,
    GenerationInputs,
    TrialRecord,
)

VERDICT_OF_STATE = {PROMOTED: Verdict.PROMOTE.value, PRUNED: Verdict.PRUNE.value}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def decided_gain(record: TrialRecord) -> tuple[float, float] | str:
    """(lower bound, estimate) of the gain the rule decided the trial on, or why there is
    none (rules 1 to 3)."""
    evaluation = record.evaluation
    if evaluation.get("rule") != RULE:
        return "no decision of the sequential rule is recorded"
    verdict = evaluation.get("verdict")
    if verdict != VERDICT_OF_STATE[record.state]:
        return (
            f"{record.state} although the rule's latest verdict was {verdict!r}: not decided "
            "against the champion"
        )
    numbers = evaluation.get("numbers") or {}
    breaches = (numbers.get("safety_breaches") or {}).get("candidate") or 0
    if breaches:
        return f"pruned for {breaches} safety breach(es)"
    arms = numbers.get("arms") or {}
    candidate = (arms.get("candidate") or {}).get("n") or 0
    champion = (arms.get("champion") or {}).get("n") or 0
    if min(candidate, champion) < record.min_traces_per_arm:
        return (
            f"decided on {candidate} candidate and {champion} champion traces, fewer than its "
            f"minimum of {record.min_traces_per_arm} per arm"
        )
    difference = numbers.get("difference") or {}
    lower = _number(difference.get("lower"))
    if lower is None:
        return "its decision records no bound on the gain"
    estimate = _number(difference.get("estimate"))
    return lower, lower if estimate is None else estimate


def _stale(
    record: TrialRecord, champion: OrganizationalGenome, now: datetime, policy: EvolutionPolicy
) -> str | None:
    """Rule 4: why the trial's measurement no longer speaks about the champion, or None."""
    if record.base_in_champion_lineage:
        return None
    outside = f"measured against {record.base_genome_id}, which the champion does not descend from"
    try:
        apply_patch(champion, parse_patch(record.patch))
    except GenomeError:
        return f"{outside}, and its patch no longer applies"
    ended = record.ended_at or record.updated_at
    if ended is None or now - ended > timedelta(days=policy.elite_evidence_max_age_days):
        return (
            f"{outside}, and its evidence is older than {policy.elite_evidence_max_age_days} days"
        )
    return None


def elite_parents(
    inputs: GenerationInputs, policy: EvolutionPolicy
) -> tuple[list[Elite], list[tuple[str, str]]]:
    """The best ``elite_count`` elites, best first, and each ended trial left out with why."""
    ranked: list[tuple[tuple[float, float, float, str], Elite]] = []
    excluded: list[tuple[str, str]] = []
    for record in inputs.trials:
        if record.state not in VERDICT_OF_STATE:
            continue
        gain = decided_gain(record)
        if isinstance(gain, str):
            excluded.append((record.trial_id, gain))
            continue
        stale = _stale(record, inputs.champion, inputs.now, policy)
        if stale is not None:
            excluded.append((record.trial_id, stale))
            continue
        lower, estimate = gain
        ended = record.ended_at or record.updated_at
        recency = ended.timestamp() if ended is not None else 0.0
        elite = Elite(
            trial_id=record.trial_id,
            state=record.state,
            gain_lower=round(lower, 6),
            gain_estimate=round(estimate, 6),
            patch=record.patch,
            reason=f"gain over the champion {estimate:+.3f} (lower bound {lower:+.3f})",
        )
        ranked.append(((-lower, -estimate, -recency, record.trial_id), elite))
    ranked.sort(key=lambda pair: pair[0])
    elites = [elite for _, elite in ranked]
    for elite in elites[policy.elite_count :]:
        excluded.append((elite.trial_id, f"ranked below the best {policy.elite_count}"))
    return elites[: policy.elite_count], excluded
