"""Algedonic signals (docs/rules/algedonic.md): pain and pleasure that bypass the normal channels.

Pure: the signal and its override policy, and the fixed order in which a
controller applies the policy's actions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from workers.domain.messages import new_id, now_rfc3339

MAX_SEVERITY = 10


class SignalSource(enum.StrEnum):
    USER = "User"
    CI = "Ci"
    PRODUCTION = "Production"
    SECURITY_SCANNER = "SecurityScanner"
    COST_MONITOR = "CostMonitor"
    CHILD_NODE = "ChildNode"
    REVIEWER = "Reviewer"
    EXTERNAL_ENVIRONMENT = "ExternalEnvironment"
    OTHER = "Other"


class Valence(enum.StrEnum):
    PAIN = "Pain"
    PLEASURE = "Pleasure"


@dataclass(kw_only=True)
class OverridePolicy:
    pause_subtree: bool = False
    resume_subtree: bool = False
    escalate_to_root: bool = False
    freeze_mutation: bool = False
    require_human_confirmation: bool = False


@dataclass(kw_only=True)
class AlgedonicSignal:
    id: str = field(default_factory=new_id)
    source: SignalSource = SignalSource.USER
    valence: Valence = Valence.PAIN
    severity: int = 1
    target_node_id: str | None = None
    related_task_id: str | None = None
    related_suggestion_id: str | None = None
    message: str = ""
    override_policy: OverridePolicy | None = None
    created_at: str = field(default_factory=now_rfc3339)
    metadata: dict[str, str] = field(default_factory=dict)


class Action(enum.StrEnum):
    FREEZE_MUTATION = "freeze_mutation"
    PAUSE_SUBTREE = "pause_subtree"
    RESUME_SUBTREE = "resume_subtree"
    ESCALATE = "escalate_to_root"
    REQUIRE_HUMAN_CONFIRMATION = "require_human_confirmation"


def planned_actions(policy: OverridePolicy | None) -> list[Action]:
    """The policy's actions in the fixed order of docs/rules/algedonic.md, "Handling order"."""
    if policy is None:
        return []
    wanted = [
        (policy.freeze_mutation, Action.FREEZE_MUTATION),
        (policy.pause_subtree, Action.PAUSE_SUBTREE),
        (policy.resume_subtree, Action.RESUME_SUBTREE),
        (policy.escalate_to_root, Action.ESCALATE),
        (policy.require_human_confirmation, Action.REQUIRE_HUMAN_CONFIRMATION),
    ]
    return [action for enabled, action in wanted if enabled]
