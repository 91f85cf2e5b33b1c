"""Trial routing (docs/rules/trials.md, "Routing modes", "Exposure buckets"): pure, no Django.

A controller with a live trial decides, per task, whether the trial's candidate genome
handles it (a *control* route), also sees a copy of it (a *shadow* route, Shadow mode only),
or neither. The checks, in order, each refusing with a reason a reader understands:

1. approval required and missing (per task ``trial_approved``, or the operator's approval);
2. max tasks reached;
3. token budget consumed;
4. ``estimated_files_touched`` above max files (absent is fine);
5. allowed task classes set and ``task_class`` missing or not listed;
6. the exposure policy: a control route never in Shadow mode; High/Critical risk needs
   approval; approved passes; Direct passes; Probation/Canary pass only with a traffic share
   and an exposure bucket below it. A shadow route's exposure is the same without the mode
   rules: High/Critical needs approval; approved passes; otherwise share and bucket.

The bucket is FNV-1a 64-bit of ``<task id>:<suggestion id>`` mod 10000, bit for bit the
reference kernel's, so a task falls in the same bucket wherever it is decided.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from organization.genome import OrganizationalGenome
from workers.domain.messages import RiskClass, TaskPacket

FNV_OFFSET_BASIS = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK_64 = (1 << 64) - 1
BASIS_POINTS = 10_000

APPROVAL_KEY = "trial_approved"
APPROVED = "true"
RISKY = frozenset({RiskClass.HIGH, RiskClass.CRITICAL})

# The tags a trial route writes on its task (the leaf copies every ``trial_*`` key, and
# ``related_suggestion_id``, onto the result and the trace).
TRIAL_ID = "trial_id"
RELATED_SUGGESTION_ID = "related_suggestion_id"
CANDIDATE_GENOME_ID = "candidate_genome_id"
TRIAL_MODE = "trial_mode"
ROUTE_ROLE = "trial_route_role"
SHADOW_FLAG = "trial_shadow"
EXPOSURE_BASIS_POINTS = "trial_exposure_basis_points"
EXPOSURE_BUCKET = "trial_exposure_bucket"
TRIAL_CONTROLLER = "trial_controller_node_id"
TAG_KEYS = (
    TRIAL_ID,
    RELATED_SUGGESTION_ID,
    CANDIDATE_GENOME_ID,
    TRIAL_MODE,
    ROUTE_ROLE,
    SHADOW_FLAG,
    EXPOSURE_BASIS_POINTS,
    EXPOSURE_BUCKET,
    TRIAL_CONTROLLER,
)


class TrialMode(enum.StrEnum):
    """The values of ``organization.models.LiveTrial.Mode``."""

    SHADOW = "shadow"
    PROBATION = "probation"
    CANARY = "canary"
    DIRECT = "direct"


class RouteRole(enum.StrEnum):
    CONTROL = "control"
    SHADOW = "shadow"


def exposure_bucket(task_id: str, suggestion_id: str) -> int:
    """FNV-1a 64-bit over the UTF-8 bytes of ``<task id>:<suggestion id>``, mod 10000."""
    value = FNV_OFFSET_BASIS
    for byte in f"{task_id}:{suggestion_id}".encode():
        value = ((value ^ byte) * FNV_PRIME) & MASK_64
    return value % BASIS_POINTS


@dataclass(frozen=True)
class TrialPolicy:
    """A controller's live trial as its router sees it (built from a ``LiveTrial`` row).

    ``trial_id`` is also the suggestion id. ``routed_tasks`` and ``consumed_tokens`` are the
    counters as read when the task is decided.
    """

    trial_id: str
    controller_node_id: str
    candidate_genome_id: str
    base_genome_id: str
    mode: TrialMode
    traffic_share_basis_points: int | None = None
    requires_approval: bool = False
    approved: bool = False
    max_tasks: int | None = None
    max_token_budget: int | None = None
    max_files_touched: int | None = None
    allowed_task_classes: tuple[str, ...] = ()
    routed_tasks: int = 0
    consumed_tokens: int = 0

    @property
    def suggestion_id(self) -> str:
        return self.trial_id


def task_bucket(policy: TrialPolicy, task: TaskPacket) -> int:
    return exposure_bucket(task.id, policy.suggestion_id)


def task_approved(task_metadata: Mapping[str, str], policy: TrialPolicy) -> bool:
    """This task is approved for the candidate: ``trial_approved`` is ``"true"`` or names the
    suggestion. Such a task passes the exposure check, whatever the share or its risk."""
    return task_metadata.get(APPROVAL_KEY) in (APPROVED, policy.suggestion_id)


def _limit_refusal(policy: TrialPolicy, task: TaskPacket, approved: bool) -> str | None:
    """Checks 1 to 5, shared by both routes."""
    # An operator's approval of the whole trial opens its gate; its exposure (the share,
    # the risk rule) still applies to each task.
    if policy.requires_approval and not (approved or policy.approved):
        return "the trial requires approval: neither the task nor an operator gave it"
    if policy.max_tasks is not None and policy.routed_tasks >= policy.max_tasks:
        return f"max tasks reached ({policy.routed_tasks} of {policy.max_tasks} routed)"
    if policy.max_token_budget is not None and policy.consumed_tokens >= policy.max_token_budget:
        return (
            f"token budget consumed ({policy.consumed_tokens} of {policy.max_token_budget} tokens)"
        )
    files = task.metadata.get("estimated_files_touched")
    if policy.max_files_touched is not None and files is not None:
        try:
            estimated = int(files)
        except ValueError:
            return f"estimated_files_touched {files!r} is not a whole number"
        if estimated > policy.max_files_touched:
            return f"estimated {estimated} files touched, more than {policy.max_files_touched}"
    if policy.allowed_task_classes:
        task_class = task.metadata.get("task_class")
        if not task_class:
            return "the trial allows only some task classes and the task names none"
        if task_class not in policy.allowed_task_classes:
            allowed = ", ".join(policy.allowed_task_classes)
            return f"task class {task_class!r} is not among the trial's ({allowed})"
    return None


def _share_refusal(policy: TrialPolicy, bucket: int) -> str | None:
    share = policy.traffic_share_basis_points
    if share is None:
        return f"{policy.mode.value} trial without a traffic share needs approval"
    if bucket >= min(share, BASIS_POINTS):
        return f"exposure bucket {bucket} is outside the traffic share of {share} basis points"
    return None


def control_refusal(policy: TrialPolicy, task: TaskPacket) -> str | None:
    """Why the candidate may not handle ``task`` (checks 1 to 6), or None if it may."""
    approved = task_approved(task.metadata, policy)
    refusal = _limit_refusal(policy, task, approved)
    if refusal is not None:
        return refusal
    if policy.mode is TrialMode.SHADOW:
        return "a shadow trial never handles a task itself"
    if task.risk in RISKY and not approved:
        return f"{task.risk.value} risk needs approval"
    if approved or policy.mode is TrialMode.DIRECT:
        return None
    return _share_refusal(policy, task_bucket(policy, task))


def shadow_refusal(policy: TrialPolicy, task: TaskPacket) -> str | None:
    """Why the candidate may not see a copy of ``task`` (checks 1 to 5, shadow exposure)."""
    if policy.mode is not TrialMode.SHADOW:
        return f"a {policy.mode.value} trial sends no shadow copies"
    approved = task_approved(task.metadata, policy)
    refusal = _limit_refusal(policy, task, approved)
    if refusal is not None:
        return refusal
    if task.risk in RISKY and not approved:
        return f"{task.risk.value} risk needs approval"
    if approved:
        return None
    return _share_refusal(policy, task_bucket(policy, task))


def candidate_controller_refusal(
    genome: OrganizationalGenome, controller_node_id: str
) -> str | None:
    """The candidate must keep the controller as a metasystem for it to route anything."""
    node = genome.nodes.get(controller_node_id)
    if node is None:
        return f"the candidate genome has no node {controller_node_id!r}"
    if not node.children:
        return f"{controller_node_id!r} has no children in the candidate genome"
    return None


def trial_tags(policy: TrialPolicy, role: RouteRole, bucket: int) -> dict[str, str]:
    """The metadata a trial route writes on its task (metadata values are strings)."""
    share = policy.traffic_share_basis_points
    tags = {
        TRIAL_ID: policy.trial_id,
        RELATED_SUGGESTION_ID: policy.suggestion_id,
        CANDIDATE_GENOME_ID: policy.candidate_genome_id,
        TRIAL_MODE: policy.mode.value,
        ROUTE_ROLE: role.value,
        EXPOSURE_BASIS_POINTS: "" if share is None else str(share),
        EXPOSURE_BUCKET: str(bucket),
        TRIAL_CONTROLLER: policy.controller_node_id,
    }
    if role is RouteRole.SHADOW:
        tags[SHADOW_FLAG] = "true"
    return tags


def without_trial_tags(metadata: Mapping[str, str]) -> dict[str, str]:
    """``metadata`` less the tags a trial route wrote (``trial_approved`` stays: it is input)."""
    return {key: value for key, value in metadata.items() if key not in TAG_KEYS}


def is_shadow_result(metadata: Mapping[str, str]) -> bool:
    """A shadow route's result (or task): evidence only, never forwarded past its trial."""
    return metadata.get(SHADOW_FLAG) == "true" or metadata.get(ROUTE_ROLE) == RouteRole.SHADOW


def related_suggestion(metadata: Mapping[str, str]) -> str | None:
    """The suggestion a task or result is evidence for: ``related_suggestion_id``, else
    ``trial_id``."""
    return metadata.get(RELATED_SUGGESTION_ID) or metadata.get(TRIAL_ID) or None
