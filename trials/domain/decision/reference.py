"""The reference kernel's decision rule, kept as a named policy for comparison only.

``reference_absolute_v1`` sums the candidate's own trace scores and compares the total with
fixed thresholds: no baseline, no uncertainty, so one lucky task scoring about 1 promotes.
Nothing in the project acts on it; it exists so its verdicts can be set beside the real rule's.
"""

from __future__ import annotations

from collections.abc import Sequence

from .rule import Decision
from .sequential import Verdict

REFERENCE_RULE = "reference_absolute_v1"


def reference_decision(
    scores: Sequence[float],
    *,
    min_tasks: int = 10,
    promote_margin: float = 1.0,
    prune_below: float = -10.0,
) -> Decision:
    """Below ``min_tasks`` → continue (total reported as 0); else the summed score decides."""
    enough = len(scores) >= min_tasks
    total = float(sum(scores)) if enough else 0.0
    if not enough:
        verdict, reason = Verdict.CONTINUE, f"{len(scores)} of {min_tasks} traces so far."
    elif total >= promote_margin:
        verdict, reason = Verdict.PROMOTE, f"Total score {total:g} reached {promote_margin:g}."
    elif total <= prune_below:
        verdict, reason = Verdict.PRUNE, f"Total score {total:g} fell to {prune_below:g}."
    else:
        verdict, reason = Verdict.CONTINUE, f"Total score {total:g} is between the thresholds."
    numbers = {
        "traces": len(scores),
        "total": total,
        "min_tasks": min_tasks,
        "promote_margin": promote_margin,
        "prune_below": prune_below,
        "comparison_only": True,
    }
    return Decision(verdict=verdict, reason=reason, rule=REFERENCE_RULE, numbers=numbers)
