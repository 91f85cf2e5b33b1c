"""System 3's decision procedure on a bargain (docs/rules/bargaining.md, "Decision procedure")."""

from __future__ import annotations

from datetime import datetime

from organization.genome import NodeNotFound, OrganizationalGenome, ViableNode
from workers.domain.bargaining.epochs import (
    NO_USAGE,
    Budgets,
    EpochUsage,
    edge_budgets,
    remaining_messages,
    remaining_tokens,
)
from workers.domain.bargaining.pressure import (
    NO_COORDINATION_PRESSURE,
    CoordinationPressure,
    homeostat_token_cap,
)
from workers.domain.bargaining.records import (
    AllocationStatus,
    PauseFacts,
    ResourceAllocationDecision,
    ResourceBargain,
    rfc3339,
)
from workers.domain.decomposition import NO_PRESSURE, EnvironmentPressure
from workers.domain.messages import now_rfc3339


def decide(
    bargain: ResourceBargain,
    *,
    genome: OrganizationalGenome,
    controller_id: str,
    usage: EpochUsage = NO_USAGE,
    pause: PauseFacts | None = None,
    coordination: CoordinationPressure = NO_COORDINATION_PRESSURE,
    environment: EnvironmentPressure = NO_PRESSURE,
    budgets: Budgets | None = None,
    now: datetime | None = None,
) -> ResourceAllocationDecision:
    """System 3's answer to ``bargain`` from ``controller_id``, by the decision procedure.

    Steps 0-5 refuse the whole bargain (every requested permission and ref is listed as
    denied); past them, tokens, tool permissions and context refs are granted one by one and
    the status says whether all, some or none were. Never raises for a bad bargain: an
    unknown node or a mismatched task id is a Denied decision.

    ``budgets`` are the edge's limits for this epoch; by default those of the genome
    (:func:`edge_budgets`). A caller passes them when an operator raised them for the epoch.
    """
    created_at = now_rfc3339() if now is None else rfc3339(now)
    task_id = bargain.task_id
    if task_id is None and bargain.proposed_task is not None:
        task_id = bargain.proposed_task.id
    if budgets is None:
        budgets = edge_budgets(genome, controller_id, bargain.requested_by)
    refusal = _refusal(
        bargain,
        genome=genome,
        controller_id=controller_id,
        messages_left=remaining_messages(budgets, usage),
        pause=pause,
    )
    if refusal is not None:
        return ResourceAllocationDecision(
            requested_by=bargain.requested_by,
            task_id=task_id,
            status=AllocationStatus.DENIED,
            denied_tool_permissions=list(bargain.requested_tool_permissions),
            denied_context_refs=list(bargain.requested_context_refs),
            reasons=[refusal],
            created_at=created_at,
        )

    controller, requester = genome.nodes[controller_id], genome.nodes[bargain.requested_by]
    decision = ResourceAllocationDecision(
        requested_by=bargain.requested_by,
        task_id=task_id,
        status=AllocationStatus.DENIED,
        created_at=created_at,
    )
    requested = bargain.requested_tokens
    if requested is not None:
        left = remaining_tokens(budgets, usage)
        cap = _task_token_cap(controller, requester)
        decision.approved_tokens = _grant_tokens(
            requested, cap, environment, coordination, left, decision.reasons
        )
    for permission in bargain.requested_tool_permissions:
        if tool_permission_allowed(requester, permission):
            decision.approved_tool_permissions.append(permission)
        else:
            decision.denied_tool_permissions.append(permission)
            decision.reasons.append(f"tool_permission_denied={permission}")
    for context_ref in bargain.requested_context_refs:
        if context_ref_allowed(requester, context_ref):
            decision.approved_context_refs.append(context_ref)
        else:
            decision.denied_context_refs.append(context_ref)
            decision.reasons.append(f"context_ref_denied={context_ref}")
    decision.status = _status(bargain, decision)
    return decision


def _refusal(
    bargain: ResourceBargain,
    *,
    genome: OrganizationalGenome,
    controller_id: str,
    messages_left: int | None,
    pause: PauseFacts | None,
) -> str | None:
    """The reason steps 0-5 refuse the whole bargain, or None when it may be weighed."""
    proposed = bargain.proposed_task
    if proposed is not None and bargain.task_id is not None and bargain.task_id != proposed.id:
        return (
            f"resource bargain task_id {bargain.task_id} does not match proposed_task id "
            f"{proposed.id}"
        )
    if pause is not None:
        return (
            f"ResourceBargaining denied because subtree {pause.target_node_id} is paused by "
            f"algedonic signal: {pause.reason}"
        )
    controller = genome.nodes.get(controller_id)
    if controller is None:
        return f"controller node unavailable: {NodeNotFound(controller_id)}"
    if bargain.requested_by not in genome.nodes:
        return f"requesting node unavailable: {NodeNotFound(bargain.requested_by)}"
    if bargain.requested_by not in controller.children:
        return "requesting node is not a direct System 1 child of this System 3 controller"
    if not controller.system_3.can_allocate_budget:
        return "System 3 resource allocation disabled by genome policy"
    if messages_left == 0:
        return "ResourceBargaining message budget exhausted for this epoch"
    return None


def _task_token_cap(controller: ViableNode, requester: ViableNode) -> int | None:
    caps = [
        controller.system_3.default_task_budget_tokens,
        requester.context_policy.max_total_task_tokens,
    ]
    return min((cap for cap in caps if cap is not None), default=None)


def _grant_tokens(
    requested: int,
    cap: int | None,
    environment: EnvironmentPressure,
    coordination: CoordinationPressure,
    epoch_remaining: int | None,
    reasons: list[str],
) -> int | None:
    """Step 6: the tokens granted (None = none), appending the reason for every cut."""
    pressure_caps = (
        (homeostat_token_cap(environment, requested), "Three-Four homeostat resource pressure"),
        (coordination.token_cap(requested), "System 2 coordination pressure"),
    )
    for pressure_cap, source in pressure_caps:
        if pressure_cap is None:
            continue
        lowered = cap is None or pressure_cap < cap
        cap = pressure_cap if cap is None else min(cap, pressure_cap)
        if lowered:
            reasons.append(f"requested_tokens={requested} capped_to={cap} by {source}")
    if epoch_remaining is not None:
        lowered = cap is None or epoch_remaining < cap
        cap = epoch_remaining if cap is None else min(cap, epoch_remaining)
        if epoch_remaining == 0:
            reasons.append("ResourceBargaining token budget exhausted for this epoch")
        elif lowered and requested > epoch_remaining:
            reasons.append(
                f"requested_tokens={requested} capped_to={epoch_remaining} "
                "by ResourceBargaining epoch budget"
            )
    if cap == 0:
        reasons.append("token request denied because effective token cap is zero")
        return None
    if cap is not None and requested > cap:
        reasons.append(f"requested_tokens={requested} capped_to={cap} by System 3 resource policy")
        return cap
    return requested


def tool_permission_allowed(node: ViableNode, permission: str) -> bool:
    """Not denied; listed if an allow-list exists; else any tool's name or permission, if the
    node has tools at all (a node without tools may ask for anything)."""
    if permission in node.permissions.denied_tools:
        return False
    if node.permissions.allowed_tools:
        return permission in node.permissions.allowed_tools
    if not node.tools:
        return True
    return any(
        tool.enabled and (tool.name == permission or permission in tool.permissions)
        for tool in node.tools
    )


def context_ref_allowed(node: ViableNode, context_ref: str) -> bool:
    """Any ref when the node declares none, else only a fixed or retrievable one."""
    policy = node.context_policy
    if not policy.fixed_context_refs and not policy.retrievable_context_refs:
        return True
    return (
        context_ref in policy.fixed_context_refs or context_ref in policy.retrievable_context_refs
    )


def _status(bargain: ResourceBargain, decision: ResourceAllocationDecision) -> AllocationStatus:
    """Step 9: compare what was asked with what was granted."""
    asked, granted = bargain.requested_tokens, decision.approved_tokens
    requested = (asked is not None) + len(bargain.requested_tool_permissions)
    requested += len(bargain.requested_context_refs)
    approved = (granted is not None) + len(decision.approved_tool_permissions)
    approved += len(decision.approved_context_refs)
    # Refused tokens and cut tokens each count once as denied (they cannot both happen).
    tokens_short = asked is not None and (granted is None or granted < asked)
    denied = len(decision.denied_tool_permissions) + len(decision.denied_context_refs)
    denied += tokens_short
    if requested == 0:
        decision.reasons.append("no concrete resource request supplied")
        return AllocationStatus.DENIED
    if approved == requested and denied == 0:
        decision.reasons.append("resource bargain approved within System 3 policy")
        return AllocationStatus.APPROVED
    return AllocationStatus.PARTIALLY_APPROVED if approved > 0 else AllocationStatus.DENIED
