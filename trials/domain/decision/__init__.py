"""A trial's decision rule: the candidate's arm against the champion's, never an absolute score.

``decide`` (two arms over the same window) and ``decide_paired`` (shadow pairs) apply policy
``sequential_confidence_v1`` after every trace: an anytime-valid confidence sequence for the
gain in success rate, guardrails on tokens and latency, safety breaches first (``.sequential``
states the method and its assumptions). ``reference_decision`` is the reference kernel's rule,
for comparison only. Pure: nothing here imports Django.
"""

from .arms import ArmArrays, ArmSummary, Observation, PairedArrays, PairedSummary
from .reference import REFERENCE_RULE, reference_decision
from .rule import (
    RULE,
    Decision,
    decide,
    decide_paired,
    significantly_worse,
    wilson_interval,
)
from .sequential import (
    CONTINUE,
    INCONCLUSIVE,
    PROMOTE,
    PRUNE,
    VERDICTS,
    DecisionSettings,
    Verdict,
    verdict_codes,
    verdict_codes_paired,
)

__all__ = [
    "CONTINUE",
    "INCONCLUSIVE",
    "PROMOTE",
    "PRUNE",
    "REFERENCE_RULE",
    "RULE",
    "VERDICTS",
    "ArmArrays",
    "ArmSummary",
    "Decision",
    "DecisionSettings",
    "Observation",
    "PairedArrays",
    "PairedSummary",
    "Verdict",
    "decide",
    "decide_paired",
    "reference_decision",
    "significantly_worse",
    "verdict_codes",
    "verdict_codes_paired",
    "wilson_interval",
]
