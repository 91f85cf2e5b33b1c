"""Comparison policies, for benchmarks only: what the loop would do without the real rule.

* ``naive_fixed_sample_v1``: a one-sided fixed-sample test (pooled two-proportion z for the
  gain, Welch z for the token and latency guardrails) at level alpha, **re-checked after every
  trace**. Each look alone is a valid test; looking after every trace is not, which is the
  point of the comparison (docs/rules/trials.md measures 16-23% false promotions on equal arms).
* ``random_choice_v1``: a control. Once both arms have the minimum it promotes or prunes by a
  fair coin fixed by the trial's id.
* ``reference_absolute_v1`` (``.reference``) is the reference kernel's summed-score rule.

``comparison_decision`` dispatches on the policy's name. A comparison policy whose evidence is
exhausted without a verdict ends inconclusive, like the real rule, so a benchmark's loop can go
on (the reference kernel left such trials running). Pure: nothing here imports Django.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict

from .arms import ArmSummary
from .reference import REFERENCE_RULE, reference_decision
from .rule import Decision
from .sequential import DecisionSettings, Verdict

NAIVE_RULE = "naive_fixed_sample_v1"
RANDOM_RULE = "random_choice_v1"
COMPARISON_RULES = (REFERENCE_RULE, NAIVE_RULE, RANDOM_RULE)


def _z(alpha: float) -> float:
    from scipy import stats  # type: ignore[import-untyped]  # 0.7 s to import: only when deciding

    return float(stats.norm.ppf(1 - alpha))


def _gain_z(candidate: ArmSummary, champion: ArmSummary) -> float:
    """Pooled two-proportion z of candidate rate - champion rate (0 when it cannot be judged)."""
    if not candidate.n or not champion.n:
        return 0.0
    pooled = (candidate.successes + champion.successes) / (candidate.n + champion.n)
    variance = pooled * (1 - pooled) * (1 / candidate.n + 1 / champion.n)
    gain = candidate.successes / candidate.n - champion.successes / champion.n
    if variance <= 0:
        return 0.0
    return gain / math.sqrt(variance)


def _excess_upper(
    candidate: tuple[float, float, int], champion: tuple[float, float, int], factor: float, z: float
) -> float:
    """Fixed-sample upper bound of candidate mean - factor * champion mean, from (sum, sum of
    squares, n) per arm; infinite below two traces in an arm."""
    (sum_c, sq_c, n_c), (sum_h, sq_h, n_h) = candidate, champion
    if n_c < 2 or n_h < 2:
        return math.inf
    mean_c, mean_h = sum_c / n_c, sum_h / n_h
    var_c = max(sq_c - n_c * mean_c**2, 0.0) / (n_c - 1)
    var_h = max(sq_h - n_h * mean_h**2, 0.0) / (n_h - 1)
    se = math.sqrt(var_c / n_c + factor**2 * var_h / n_h)
    return mean_c - factor * mean_h + z * se


def naive_decision(
    candidate: ArmSummary,
    champion: ArmSummary,
    settings: DecisionSettings,
    *,
    deadline_passed: bool = False,
) -> Decision:
    """The fixed-sample test at this look: breach → prune; both arms at the minimum and the
    gain significant and both guardrails non-inferior → promote; significantly worse → prune;
    at the maximum or the deadline → inconclusive; else continue."""
    z_alpha = _z(settings.alpha)
    gain_z = _gain_z(candidate, champion)
    tokens_upper = _excess_upper(
        (candidate.tokens_sum, candidate.tokens_sumsq, candidate.n),
        (champion.tokens_sum, champion.tokens_sumsq, champion.n),
        1 + settings.token_margin,
        z_alpha,
    )
    latency_upper = _excess_upper(
        (candidate.latency_sum, candidate.latency_sumsq, candidate.n),
        (champion.latency_sum, champion.latency_sumsq, champion.n),
        1 + settings.latency_margin,
        z_alpha,
    )
    guards = tokens_upper <= 0 and latency_upper <= 0
    enough = min(candidate.n, champion.n) >= settings.min_traces_per_arm
    stopped = candidate.n >= settings.max_traces_per_arm or deadline_passed
    if candidate.safety_breaches:
        verdict, reason = Verdict.PRUNE, "Pruned: the candidate breached safety."
    elif enough and gain_z > z_alpha and guards:
        verdict, reason = Verdict.PROMOTE, f"Promoted: z = {gain_z:.2f} > {z_alpha:.2f}."
    elif enough and gain_z < -z_alpha:
        verdict, reason = Verdict.PRUNE, f"Pruned: z = {gain_z:.2f} < {-z_alpha:.2f}."
    elif stopped:
        verdict, reason = Verdict.INCONCLUSIVE, f"Inconclusive: z = {gain_z:.2f} at the end."
    else:
        verdict, reason = Verdict.CONTINUE, f"Continue: z = {gain_z:.2f}."
    numbers = {
        "candidate": {"n": candidate.n, "successes": candidate.successes},
        "champion": {"n": champion.n, "successes": champion.successes},
        "gain_z": round(gain_z, 6),
        "z_alpha": round(z_alpha, 6),
        "tokens_upper": None if math.isinf(tokens_upper) else round(tokens_upper, 6),
        "latency_upper": None if math.isinf(latency_upper) else round(latency_upper, 6),
        "settings": asdict(settings),
        "comparison_only": True,
    }
    return Decision(verdict=verdict, reason=reason, rule=NAIVE_RULE, numbers=numbers)


def coin(key: str) -> bool:
    """A fair coin fixed by ``key``."""
    return hashlib.sha256(f"random_choice_v1\x00{key}".encode()).digest()[0] < 128


def random_decision(
    candidate: ArmSummary,
    champion: ArmSummary,
    settings: DecisionSettings,
    *,
    key: str,
    deadline_passed: bool = False,
) -> Decision:
    """The control: at the minimum, promote or prune by ``coin(key)``."""
    enough = min(candidate.n, champion.n) >= settings.min_traces_per_arm
    if candidate.safety_breaches:
        verdict = Verdict.PRUNE
    elif enough:
        verdict = Verdict.PROMOTE if coin(key) else Verdict.PRUNE
    elif candidate.n >= settings.max_traces_per_arm or deadline_passed:
        verdict = Verdict.INCONCLUSIVE
    else:
        verdict = Verdict.CONTINUE
    numbers = {"candidate_n": candidate.n, "champion_n": champion.n, "comparison_only": True}
    return Decision(
        verdict=verdict, reason=f"Random choice: {verdict}.", rule=RANDOM_RULE, numbers=numbers
    )


def comparison_decision(
    rule: str,
    candidate: ArmSummary,
    champion: ArmSummary,
    candidate_scores: Sequence[float],
    settings: DecisionSettings,
    *,
    key: str,
    deadline_passed: bool = False,
) -> Decision:
    """The named comparison policy's decision; ValueError for a name that is not one."""
    if rule == NAIVE_RULE:
        return naive_decision(candidate, champion, settings, deadline_passed=deadline_passed)
    if rule == RANDOM_RULE:
        return random_decision(
            candidate, champion, settings, key=key, deadline_passed=deadline_passed
        )
    if rule == REFERENCE_RULE:
        decision = reference_decision(candidate_scores)
        if decision.verdict == Verdict.CONTINUE and deadline_passed:
            return Decision(
                verdict=Verdict.INCONCLUSIVE,
                reason=f"Inconclusive at the end: {decision.reason}",
                rule=decision.rule,
                numbers=decision.numbers,
            )
        return decision
    raise ValueError(f"unknown decision rule {rule!r}; known: {', '.join(COMPARISON_RULES)}")
