"""Environment pressure on selection (docs/rules/trials.md, "Selection score"). Pure.

The controller's environment pressure (docs/rules/bargaining.md, "Environment pressure")
favours the sources that answer it: risk favours algedonic and System 3* suggestions,
opportunity System 4's future probes, user feedback System 1's bargains. Each bonus is added
to the expected value and the score; risk also rewards a bounded candidate's safety. Applied
before the frontier, so pressure can move a candidate onto it.
"""

from __future__ import annotations

from dataclasses import dataclass

from trials.domain.selection.candidate import (
    ALGEDONIC,
    SYSTEM1,
    SYSTEM2,
    SYSTEM3_STAR,
    SYSTEM4,
    Candidate,
)
from trials.domain.selection.objectives import Objectives
from trials.domain.selection.score import Score

RISK_WEIGHTS = {ALGEDONIC: 1.0, SYSTEM3_STAR: 0.85, SYSTEM1: 0.65, SYSTEM2: 0.5, SYSTEM4: 0.25}
RISK_OTHER, RISK_FACTOR, RISK_CAP = 0.2, 0.8, 18.0
OPPORTUNITY_WEIGHTS = {
    SYSTEM4: 1.0,
    SYSTEM3_STAR: 0.35,
    SYSTEM2: 0.3,
    SYSTEM1: 0.25,
    ALGEDONIC: 0.15,
}
OPPORTUNITY_OTHER, OPPORTUNITY_FACTOR, OPPORTUNITY_CAP = 0.5, 0.9, 16.0
FEEDBACK_WEIGHTS = {SYSTEM1: 0.75, SYSTEM3_STAR: 0.5, SYSTEM2: 0.4}
FEEDBACK_OTHER, FEEDBACK_FACTOR, FEEDBACK_CAP = 0.25, 0.4, 8.0
SAFETY_FACTOR, SAFETY_CAP = 0.3, 8.0


@dataclass(frozen=True, kw_only=True)
class Pressure:
    """The three pressures selection reads."""

    risk: float = 0.0
    opportunity: float = 0.0
    feedback: float = 0.0


NO_PRESSURE = Pressure()


def apply_pressure(
    candidate: Candidate, objectives: Objectives, score: Score, pressure: Pressure
) -> Objectives:
    """Add the pressure bonuses to ``score`` (with their reasons) and return the objectives
    with them."""
    source = candidate.source
    risk = min(pressure.risk * RISK_FACTOR * RISK_WEIGHTS.get(source, RISK_OTHER), RISK_CAP)
    opportunity = min(
        pressure.opportunity
        * OPPORTUNITY_FACTOR
        * OPPORTUNITY_WEIGHTS.get(source, OPPORTUNITY_OTHER),
        OPPORTUNITY_CAP,
    )
    feedback = min(
        pressure.feedback * FEEDBACK_FACTOR * FEEDBACK_WEIGHTS.get(source, FEEDBACK_OTHER),
        FEEDBACK_CAP,
    )
    score.add(f"environment_risk_pressure={pressure.risk:.3f}", risk)
    score.add(f"environment_opportunity_pressure={pressure.opportunity:.3f}", opportunity)
    score.add(f"environment_feedback_pressure={pressure.feedback:.3f}", feedback)
    safety = 0.0
    if pressure.risk > 0 and candidate.bounded:
        safety = min(SAFETY_FACTOR * pressure.risk, SAFETY_CAP)
        score.add(f"environment_bounded_safety_bonus={safety:.3f}", safety)
    return objectives.plus(expected_value=risk + opportunity + feedback, safety=safety)
