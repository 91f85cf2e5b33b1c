"""Decomposition of a directive task, revision of a failed child (docs/rules/decomposition.md).

Pure planning, no Django: given the root task the mapper produced, the genome and the
environment pressure, decide which child tasks exist, who should take each one and how they
depend on one another. Logging TaskMapped, building the synthetic envelopes and routing stay
with the controller service; the plan carries the channel and policy strings it needs.

The root task is bookkeeping only: it is never routed. Every child names the root as its
parent, so results can be traced back to the directive.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias

from organization.genome import (
    LeafKind,
    NodeLifecycleStatus,
    OrganizationalGenome,
    RuntimeCapabilities,
    VsmChannelType,
    derive_capabilities,
)
from workers.domain.mapping import TASK_METADATA_PREFIX, bool_text, is_truthy
from workers.domain.messages import DirectiveMessage, RiskClass, TaskPacket, TaskResult, TaskStatus

DECOMPOSITION_REQUEST_POLICY = "system3_capability_split"
DECOMPOSITION_POLICY = "system3_capability_split_v1"
DECOMPOSITION_AUTHORITY = "system3"
PRESSURE_POLICY = "environment_three_four_pressure_v1"
ROOT_TASK_MAPPED_POLICY = "system3_capability_split_root"

REVISION_POLICY = "system3_result_revision_v1"
REVISION_TASK_MAPPED_POLICY = "system3_result_revision"
REVISION_CHANNEL = VsmChannelType.SYSTEM2_COORDINATION
# A revision is never itself revised: one failed retry goes back up instead of looping.
MAX_REVISION_DEPTH = 1
REVISABLE_STATUSES = frozenset({TaskStatus.FAILED, TaskStatus.REJECTED, TaskStatus.NEEDS_HUMAN})

# Homeostat pressure thresholds (docs/rules/decomposition.md, "Environment pressure thresholds").
REVIEW_RISK_PRESSURE = 6.0
REVIEW_MAX_SEVERITY = 7
INTEGRATION_RISK_PRESSURE = 6.0
INTEGRATION_OPPORTUNITY_PRESSURE = 6.0


@dataclass(frozen=True, kw_only=True)
class EnvironmentPressure:
    """The part of the environment pressure (docs/rules/bargaining.md) decomposition reads."""

    event_count: int = 0
    homeostat_count: int = 0
    risk: float = 0.0
    opportunity: float = 0.0
    feedback: float = 0.0
    max_severity: int = 0

    @property
    def has_events(self) -> bool:
        return self.event_count > 0

    @property
    def requires_review(self) -> bool:
        return self.homeostat_count > 0 and (
            self.risk >= REVIEW_RISK_PRESSURE or self.max_severity >= REVIEW_MAX_SEVERITY
        )

    @property
    def requires_integration(self) -> bool:
        return (
            self.homeostat_count > 0
            and self.risk >= INTEGRATION_RISK_PRESSURE
            and self.opportunity >= INTEGRATION_OPPORTUNITY_PRESSURE
        )


NO_PRESSURE = EnvironmentPressure()


class DecompositionRole(StrEnum):
    IMPLEMENTATION = "implementation"
    TEST = "test"
    REVIEW = "review"
    INTEGRATION = "integration"


@dataclass(frozen=True, kw_only=True)
class RoleSpec:
    title_prefix: str
    goal_template: str  # formatted with the root task id; "" keeps the root task's goal
    required_capability: str
    preferred_kind: LeafKind
    capability_field: str
    channel: VsmChannelType
    task_mapped_policy: str


ROLE_SPECS: dict[DecompositionRole, RoleSpec] = {
    DecompositionRole.IMPLEMENTATION: RoleSpec(
        title_prefix="Implement",
        goal_template="",
        required_capability="write_code",
        preferred_kind=LeafKind.CODING,
        capability_field="can_write_code",
        channel=VsmChannelType.RESOURCE_BARGAINING,
        task_mapped_policy="system3_capability_split_implementation",
    ),
    DecompositionRole.TEST: RoleSpec(
        title_prefix="Test",
        goal_template="Verify the implementation for directive task {root_id}",
        required_capability="run_tests",
        preferred_kind=LeafKind.TESTING,
        capability_field="can_run_tests",
        channel=VsmChannelType.SYSTEM2_COORDINATION,
        task_mapped_policy="system3_capability_split_test",
    ),
    DecompositionRole.REVIEW: RoleSpec(
        title_prefix="Review",
        goal_template="Review the implementation for directive task {root_id}",
        required_capability="review",
        preferred_kind=LeafKind.REVIEWING,
        capability_field="can_review",
        channel=VsmChannelType.SYSTEM2_COORDINATION,
        task_mapped_policy="system3_capability_split_review",
    ),
    DecompositionRole.INTEGRATION: RoleSpec(
        title_prefix="Integrate",
        goal_template="Integrate dependent outputs for directive task {root_id}",
        required_capability="integrate",
        preferred_kind=LeafKind.INTEGRATION,
        capability_field="can_integrate",
        channel=VsmChannelType.SYSTEM2_COORDINATION,
        task_mapped_policy="system3_capability_split_integration",
    ),
}


@dataclass(kw_only=True)
class PlannedTask:
    """One child task, the channel its synthetic envelope uses and its TaskMapped policy."""

    role: DecompositionRole
    task: TaskPacket
    channel: VsmChannelType
    task_mapped_policy: str


@dataclass(kw_only=True)
class DecompositionPlan:
    """The (annotated) root task and its children in routing order; no children = single task."""

    root: TaskPacket
    children: list[PlannedTask] = field(default_factory=list)
    root_task_mapped_policy: str = ROOT_TASK_MAPPED_POLICY

    @property
    def decomposed(self) -> bool:
        return bool(self.children)


MetadataSource: TypeAlias = Mapping[str, str] | DirectiveMessage | TaskPacket


def _metadata_of(source: MetadataSource) -> Mapping[str, str]:
    if isinstance(source, DirectiveMessage | TaskPacket):
        return source.metadata
    return source


def _flag(metadata: Mapping[str, str], key: str) -> bool:
    """Truthy ``key``, else truthy ``task.metadata.<key>`` (the plain spelling wins)."""
    value = metadata.get(key)
    if value is None:
        value = metadata.get(TASK_METADATA_PREFIX + key)
    return is_truthy(value)


def decomposition_requested(source: MetadataSource) -> bool:
    """Whether directive (or task) metadata asks System 3 to split the work."""
    metadata = _metadata_of(source)
    return _flag(metadata, "decompose") or any(
        metadata.get(key) == DECOMPOSITION_REQUEST_POLICY
        for key in ("decomposition_policy", TASK_METADATA_PREFIX + "decomposition_policy")
    )


def _tests_requested(metadata: Mapping[str, str]) -> bool:
    return (
        _flag(metadata, "requires_tests")
        or "test_targets" in metadata
        or TASK_METADATA_PREFIX + "test_targets" in metadata
    )


def plan_decomposition(
    root: TaskPacket,
    *,
    genome: OrganizationalGenome,
    controller_node_id: str,
    pressure: EnvironmentPressure = NO_PRESSURE,
    default_requires_code_write: bool = True,
    directive_metadata: Mapping[str, str] | None = None,
) -> DecompositionPlan:
    """Split a root task into implementation, test, review and integration children.

    The request flags (``decompose``, ``requires_tests``, ``test_targets``,
    ``requires_review``, ``requires_integration``) are read from ``directive_metadata`` when
    given (what the reference reads), else from the root task's own metadata. Returns a plan
    without children, and the root unannotated, when decomposition was not requested or the
    controller's ``system_3.can_decompose_tasks`` is false. The input task is never mutated.
    Raises NodeNotFound when the controller is not in the genome.
    """
    root = copy.deepcopy(root)
    request = root.metadata if directive_metadata is None else directive_metadata
    controller = genome.node(controller_node_id)
    if not decomposition_requested(request) or not controller.system_3.can_decompose_tasks:
        return DecompositionPlan(root=root)

    _annotate_root(root, pressure)

    def plan(role: DecompositionRole, target_child: str | None) -> PlannedTask:
        spec = ROLE_SPECS[role]
        task = _child_task(root, role, target_child)
        return PlannedTask(
            role=role, task=task, channel=spec.channel, task_mapped_policy=spec.task_mapped_policy
        )

    def target(role: DecompositionRole) -> str | None:
        return decomposition_target_child(genome, controller_node_id, role)

    implementation = plan(
        DecompositionRole.IMPLEMENTATION, target(DecompositionRole.IMPLEMENTATION)
    )
    implementation.task.metadata["requires_code_write"] = bool_text(default_requires_code_write)
    children = [implementation]

    wanted = _supporting_roles_wanted(request, root.risk, pressure)
    for role, is_wanted in wanted.items():
        target_child = target(role) if is_wanted else None
        # A supporting role is planned only when some child can take it (unlike the
        # implementation, which is left to the router's fallback when no child fits).
        if target_child is None:
            continue
        planned = plan(role, target_child)
        if role is DecompositionRole.INTEGRATION:
            planned.task.dependencies = [child.task.id for child in children]
        else:
            planned.task.dependencies = [implementation.task.id]
        planned.task.metadata["requires_code_write"] = "false"
        children.append(planned)

    root.metadata["decomposition_task_count"] = str(len(children))
    root.metadata = dict(sorted(root.metadata.items()))
    for child in children:
        child.task.metadata = dict(sorted(child.task.metadata.items()))
    return DecompositionPlan(root=root, children=children)


def _supporting_roles_wanted(
    request: Mapping[str, str], risk: RiskClass, pressure: EnvironmentPressure
) -> dict[DecompositionRole, bool]:
    """Which of test, review and integration the request, the risk and the pressure ask for."""
    return {
        DecompositionRole.TEST: _tests_requested(request),
        DecompositionRole.REVIEW: _flag(request, "requires_review")
        or risk in (RiskClass.HIGH, RiskClass.CRITICAL)
        or pressure.requires_review,
        DecompositionRole.INTEGRATION: _flag(request, "requires_integration")
        or pressure.requires_integration,
    }


def _annotate_root(root: TaskPacket, pressure: EnvironmentPressure) -> None:
    root.metadata["decomposition_policy"] = DECOMPOSITION_POLICY
    root.metadata["decomposition_authority"] = DECOMPOSITION_AUTHORITY
    root.metadata["decomposition_root"] = "true"
    if pressure.has_events:
        root.metadata.update(
            {
                "decomposition_pressure_policy": PRESSURE_POLICY,
                "environment_signal_count": str(pressure.event_count),
                "three_four_homeostat_count": str(pressure.homeostat_count),
                "environment_risk_pressure": f"{pressure.risk:.3f}",
                "environment_opportunity_pressure": f"{pressure.opportunity:.3f}",
                "environment_feedback_pressure": f"{pressure.feedback:.3f}",
                "environment_max_severity": str(pressure.max_severity),
            }
        )


def _child_task(root: TaskPacket, role: DecompositionRole, target_child: str | None) -> TaskPacket:
    spec = ROLE_SPECS[role]
    metadata = dict(root.metadata)
    metadata.pop("target_child", None)
    # Not in the reference (which copies it): a child is not the root, and a child carrying
    # decomposition_root=true would be mistaken for the unrouted bookkeeping task.
    metadata.pop("decomposition_root", None)
    metadata.update(
        {
            "decomposition_policy": DECOMPOSITION_POLICY,
            "decomposition_authority": DECOMPOSITION_AUTHORITY,
            "decomposition_parent_task_id": root.id,
            "decomposition_role": role.value,
            "required_capability": spec.required_capability,
        }
    )
    if target_child is not None:
        metadata["target_child"] = target_child
    return TaskPacket(
        title=f"{spec.title_prefix}: {root.title}",
        goal=spec.goal_template.format(root_id=root.id) if spec.goal_template else root.goal,
        directive_id=root.directive_id,
        parent_task_id=root.id,
        target_state=root.target_state,
        scope=list(root.scope),
        constraints=list(root.constraints),
        context_refs=list(root.context_refs),
        authority_refs=list(root.authority_refs),
        acceptance=copy.deepcopy(root.acceptance),
        risk=root.risk,
        static_predicates=copy.deepcopy(root.static_predicates),
        metadata=metadata,
    )


def decomposition_target_child(
    genome: OrganizationalGenome, controller_node_id: str, role: DecompositionRole
) -> str | None:
    """Name of the child to take ``role``: first non-retired child of the preferred leaf kind,
    else the first non-retired child whose capabilities support the role, else None."""
    spec = ROLE_SPECS[role]
    candidates = [
        genome.nodes[child_id]
        for child_id in genome.node(controller_node_id).children
        if child_id in genome.nodes
        and genome.nodes[child_id].status is not NodeLifecycleStatus.RETIRED
    ]
    for child in candidates:
        if child.leaf_operation.kind == spec.preferred_kind:
            return child.name
    for child in candidates:
        capabilities: RuntimeCapabilities = derive_capabilities(child)
        if getattr(capabilities, spec.capability_field):
            return child.name
    return None


# -- revision ---------------------------------------------------------------

_DEPTH = re.compile(r"\+?[0-9]+")


def _revision_depth(value: str | None) -> int:
    """A non-negative integer, or 0 for anything absent or unreadable."""
    if value is None or not _DEPTH.fullmatch(value):
        return 0
    return int(value)


def plan_revision(
    result: TaskResult, *, failed_task: TaskPacket | None = None
) -> TaskPacket | None:
    """One revision task for a decomposed child that Failed, was Rejected or NeedsHuman.

    Returns None when the status is not a failure, the result carries no
    ``decomposition_role``, or the failed task was already a revision (depth ≥ 1). The result's
    metadata is read first; ``failed_task``, when the caller has it, fills in what the result
    lacks (role, depth, parent, directive, capability, target child) and lends the revision
    its scope, constraints, predicates and acceptance so the reviser sees the same brief.
    """
    if result.status not in REVISABLE_STATUSES:
        return None
    task_metadata = failed_task.metadata if failed_task is not None else {}

    def lookup(key: str) -> str | None:
        if key in result.metadata:
            return result.metadata[key]
        return task_metadata.get(key)

    role = lookup("decomposition_role")
    if role is None:
        return None
    depth = max(
        _revision_depth(result.metadata.get("decomposition_revision_depth")),
        _revision_depth(task_metadata.get("decomposition_revision_depth")),
    )
    if depth >= MAX_REVISION_DEPTH:
        return None

    status = result.status.value
    goal = (
        f"Revise decomposed task {result.task_id} after {status}. Child summary: {result.summary}"
    )
    if result.error is not None:
        goal += f" Error: {result.error}"
    metadata = {
        "decomposition_policy": REVISION_POLICY,
        "decomposition_authority": DECOMPOSITION_AUTHORITY,
        "decomposition_role": role,
        "decomposition_revision_depth": str(depth + 1),
        "decomposition_revision_of_task_id": result.task_id,
        "decomposition_result_status": status,
        "decomposition_result_produced_by": result.produced_by,
        "requires_code_write": "false",
    }
    for key in ("required_capability", "target_child"):
        value = lookup(key)
        if value is not None:
            metadata[key] = value
    if result.error is not None:
        metadata["decomposition_result_error"] = result.error

    revision = TaskPacket(
        title=f"Revise {role} after {status}",
        goal=goal,
        parent_task_id=result.metadata.get("parent_task_id"),
        directive_id=result.metadata.get("directive_id"),
        dependencies=[result.task_id],
        risk=RiskClass.HIGH if result.status is TaskStatus.NEEDS_HUMAN else RiskClass.MEDIUM,
        metadata=dict(sorted(metadata.items())),
    )
    if failed_task is not None:
        _inherit_brief(revision, failed_task)
    return revision


def _inherit_brief(revision: TaskPacket, failed_task: TaskPacket) -> None:
    if revision.parent_task_id is None:
        revision.parent_task_id = failed_task.parent_task_id
    if revision.directive_id is None:
        revision.directive_id = failed_task.directive_id
    revision.target_state = failed_task.target_state
    revision.scope = list(failed_task.scope)
    revision.constraints = list(failed_task.constraints)
    revision.context_refs = list(failed_task.context_refs)
    revision.authority_refs = list(failed_task.authority_refs)
    revision.acceptance = copy.deepcopy(failed_task.acceptance)
    revision.static_predicates = copy.deepcopy(failed_task.static_predicates)
