"""Sending a task to a direct child: the router's choice, the pause, the grant, the envelope.

Before a task leaves, the controller checks, in this order (docs/rules/routing.md):

1. trial routing (``trial_routes``, docs/rules/trials.md): with a live trial here the
   candidate genome may take the task (a control route, then steps 3 to 5 run under the
   candidate); a trial task an ancestor's trial sent down goes on under its candidate;
2. the router picks the child (``workers.domain.routing``); no child → the task fails
   here (at the root) or a failed result goes up (at a nested controller);
3. a paused child's subtree gets nothing: the task is held until the resume;
4. a leaf child must be granted the task's tokens for this epoch by this controller, its
   System 3 (``workers.services.bargaining``); denied → the task is deferred;
5. the envelope goes out on the channel the task arrived on (or ResourceBargaining),
   at the priority its risk and that channel give, carrying its lineage and the grant.

In Shadow mode a copy of the task, as it was before step 2, then goes to the candidate's
child (no grant: a shadow copy's result is evidence only, and it never holds the task).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from django.utils import timezone

from organization.genome import VsmChannelType
from workers import events
from workers.domain.channels import (
    OUTBOUND_CHANNEL,
    arrival_channel,
    outbound_channel,
    outbound_priority,
    relayed_metadata,
)
from workers.domain.lineage import mark_target, task_routed_lineage
from workers.domain.messages import (
    MessageEnvelope,
    PayloadType,
    TaskPacket,
    TaskResult,
    TaskStatus,
    to_json,
)
from workers.domain.routing import RoutingError, route
from workers.domain.trial_routing import (
    APPROVAL_KEY,
    TAG_KEYS,
    RouteRole,
    TrialMode,
    TrialPolicy,
    is_shadow_result,
)
from workers.models import ResourceGrant, Task
from workers.services.algedonic import hold_if_paused, paused
from workers.services.bargaining import grant_for_route, task_defer
from workers.services.controller import trial_routes
from workers.services.hop import Hop

CHANNEL_TASK_POLICY = "system3_channel_task"
HELD = (Task.Status.BLOCKED_PAUSED, Task.Status.DEFERRED_BUDGET)


def on_task_packet(hop: Hop, task: TaskPacket) -> None:
    """A task packet from the parent (or sent back to itself after a hold): route it on."""
    released = hop.incoming.source_node_id == hop.node_id
    if (task.parent_task_id or task.dependencies) and not released:
        hop.record(
            events.task_mapped(task, controller_node_id=hop.node_id, policy=CHANNEL_TASK_POLICY)
        )
    outcome = route_task(hop, task)
    if released and outcome.status == Task.Status.ROUTED and not is_shadow_result(task.metadata):
        # A held task is on its way again (holding and deferring mark the row themselves).
        Task.objects.filter(id=task.id, status__in=HELD).update(
            status=Task.Status.ROUTED, assigned_node_id=outcome.child_id, updated_at=timezone.now()
        )


@dataclass(frozen=True)
class RouteOutcome:
    """What became of a task: routed, blocked_paused, deferred_budget or failed (and why);
    ``shadow_copy`` when only a released shadow copy moved (the task's row is not its)."""

    status: str
    child_id: str | None = None
    summary: str = ""


SHADOW_COPY = "shadow_copy"


def route_task(hop: Hop, task: TaskPacket) -> RouteOutcome:
    """Send ``task`` to the chosen direct child (the champion's or the live trial's
    candidate's), or hold or defer it."""
    if trial_routes.in_flight(hop, task):
        return _route_on(hop, task, grant_leaf=not is_shadow_result(task.metadata))
    champion = trial_routes.champion_hop(hop)
    own_trial_id, own_shadow = trial_routes.own_trial_task(hop, task)
    task = trial_routes.untagged(task)
    policy = trial_routes.live_policy(hop.node_id)
    if own_shadow:
        # A shadow copy handed back by a paused candidate leaf: only the copy is re-decided.
        if policy is not None and policy.trial_id == own_trial_id:
            _shadow_copy(champion, task, policy, counted=True)
        return RouteOutcome(SHADOW_COPY)
    if policy is None:
        return _route_on(champion, task)
    counted = own_trial_id == policy.trial_id
    outcome = _control_route(champion, task, policy, counted=counted)
    if outcome is not None:
        return outcome
    if policy.mode is not TrialMode.SHADOW:
        return _route_on(champion, task)
    # The copy's slot is claimed first (the trial's row is locked before the grant's epoch,
    # as everywhere), and the copy goes out once the champion's route has.
    shadow = _shadow_claim(champion, copy.deepcopy(task), policy)
    outcome = _route_on(champion, task)
    if shadow is not None:
        if outcome.status == Task.Status.ROUTED:
            _shadow_publish(shadow)
        else:
            trial_routes.slot_release(policy)  # held, deferred or failed: decided again later
    return outcome


def _route_on(hop: Hop, task: TaskPacket, *, grant_leaf: bool = True) -> RouteOutcome:
    """The router's child under ``hop``'s genome, then pause, grant and publish."""
    try:
        decision = route(hop.genome, hop.node_id, task)
    except RoutingError as error:
        _routing_failed(hop, task, str(error))
        return RouteOutcome(Task.Status.FAILED, summary=str(error))
    return _send(hop, task, decision.child_id, decision.reason, grant_leaf=grant_leaf)


def _send(
    hop: Hop,
    task: TaskPacket,
    child_id: str,
    reason: str,
    *,
    grant_leaf: bool = True,
    held: TaskPacket | None = None,
) -> RouteOutcome:
    """Hold (paused), defer (grant denied) or publish ``task`` to ``child_id``; ``held`` is
    what a hold or a deferral keeps, when it is not ``task`` itself."""
    if hold_if_paused(hop, held or task, child_id):
        return RouteOutcome(Task.Status.BLOCKED_PAUSED, child_id)
    grant = None
    if grant_leaf and not hop.genome.nodes[child_id].children:
        grant = grant_for_route(hop, task, child_id)
        if grant.denied:
            task_defer(hop, grant=grant, task=held or task)
            return RouteOutcome(Task.Status.DEFERRED_BUDGET, child_id)
    _publish_routed(hop, task, child_id, reason, grant)
    return RouteOutcome(Task.Status.ROUTED, child_id)


def _control_route(
    hop: Hop, task: TaskPacket, policy: TrialPolicy, *, counted: bool
) -> RouteOutcome | None:
    """Send ``task`` on the candidate's route, or None for the champion's.

    ``counted``: the task was routed to the candidate before (and handed back), so it
    takes no second slot. A hold or deferral on the candidate keeps the task untagged
    under the candidate genome: released, it is decided afresh (from the base).
    """
    found = trial_routes.candidate_route(hop, task, policy, RouteRole.CONTROL)
    if isinstance(found, trial_routes.NoTrialRoute):
        if found.fallback:
            trial_routes.fallback_recorded(
                hop, task, policy, role=RouteRole.CONTROL, reason=found.reason
            )
        return None
    if not counted and not trial_routes.slot_claim(policy):
        if APPROVAL_KEY in task.metadata:
            reason = "max tasks reached (or the trial closed) since it was read"
            trial_routes.fallback_recorded(hop, task, policy, role=RouteRole.CONTROL, reason=reason)
        return None
    outcome = _send(found.hop, found.task, found.child_id, found.reason, held=task)
    if outcome.status == Task.Status.ROUTED:
        trial_routes.routed_recorded(found)
    elif not counted:
        trial_routes.slot_release(policy)
    return outcome


def _shadow_copy(hop: Hop, task: TaskPacket, policy: TrialPolicy, *, counted: bool) -> None:
    shadow = _shadow_claim(hop, task, policy, counted=counted)
    if shadow is not None:
        _shadow_publish(shadow)


def _shadow_claim(
    hop: Hop, task: TaskPacket, policy: TrialPolicy, *, counted: bool = False
) -> trial_routes.TrialRoute | None:
    """The shadow copy of ``task`` (same id) for the candidate's child, its slot claimed; or
    None. ``counted``: a copy handed back and released was counted when first sent.

    A copy is never held here: a paused candidate child gets none.
    """
    found = trial_routes.candidate_route(hop, task, policy, RouteRole.SHADOW)
    if isinstance(found, trial_routes.NoTrialRoute):
        if found.fallback:
            trial_routes.fallback_recorded(
                hop, task, policy, role=RouteRole.SHADOW, reason=found.reason
            )
        return None
    if paused(found.hop.genome, found.child_id) is not None:
        reason = f"no shadow copy: {found.child_id} is paused"
        trial_routes.fallback_recorded(hop, task, policy, role=RouteRole.SHADOW, reason=reason)
        return None
    if not counted and not trial_routes.slot_claim(policy):
        return None
    return found


def _shadow_publish(found: trial_routes.TrialRoute) -> None:
    """No grant is made for a copy: its result is evidence only, and the champion's route
    already had the task's grant."""
    _publish_routed(found.hop, found.task, found.child_id, found.reason, None)
    trial_routes.routed_recorded(found)


def _publish_routed(
    hop: Hop, task: TaskPacket, child_id: str, reason: str, grant: ResourceGrant | None
) -> None:
    task = mark_target(task, child_id)
    task.assigned_to = child_id
    task.metadata = {**task.metadata, "routed_by": hop.node_id, "routing_reason": reason}
    arrival = arrival_channel(task)
    channel = outbound_channel(arrival)
    priority = outbound_priority(task, arrival)
    relayed = relayed_metadata(task)
    hop.record(
        events.task_routed(
            task,
            parent_node_id=hop.node_id,
            child_node_id=child_id,
            reason=reason,
            source_channel=arrival.value,
            outbound_channel=channel.value,
            priority=priority.value,
            genome_id=hop.genome.id,
            lineage=task_routed_lineage(task),
        )
    )
    hop.reply(
        MessageEnvelope(
            channel_type=channel,
            target_node_id=child_id,
            priority=priority,
            payload_type=PayloadType.TASK_PACKET,
            payload=to_json(task),
            metadata={
                "routing_reason": reason,
                OUTBOUND_CHANNEL: channel.value,
                **relayed,
                **_grant_metadata(grant),
            },
        ),
        task_id=task.id,
        directive_id=task.directive_id,
    )


def _grant_metadata(grant: ResourceGrant | None) -> dict[str, str]:
    if grant is None:
        return {}
    return {
        "resource_grant_id": grant.id,
        "resource_grant_status": grant.status,
        "resource_approved_tokens": str(grant.approved_tokens or 0),
    }


def _routing_failed(hop: Hop, task: TaskPacket, reason: str) -> None:
    hop.record(events.task_routing_failed(task, reason=reason))
    parent_id = hop.parent_id
    if parent_id is None:
        Task.objects.filter(id=task.id).update(status=Task.Status.FAILED, result_summary=reason)
        return
    # A nested controller answers its parent with a failed result, so the root sees it.
    # A trial task keeps its tags: a shadow copy's failure must stop at its trial's
    # controller like any shadow result, a control task's counts as the candidate's.
    tags = {key: value for key, value in task.metadata.items() if key in TAG_KEYS}
    failure = TaskResult(
        task_id=task.id,
        produced_by=hop.node_id,
        status=TaskStatus.FAILED,
        summary="task could not be routed",
        error=reason,
        metadata={"directive_id": task.directive_id or "", **tags},
    )
    send_result_up(hop, failure, parent_id)


def send_result_up(hop: Hop, result: TaskResult, parent_id: str) -> None:
    hop.reply(
        MessageEnvelope(
            channel_type=VsmChannelType.MANAGEMENT_TO_OPERATION,
            target_node_id=parent_id,
            payload_type=PayloadType.TASK_RESULT,
            payload=to_json(result),
            metadata={
                "forwarded_by_controller_node_id": hop.node_id,
                "forwarded_result_task_id": result.task_id,
                "vsm_outbound_channel": VsmChannelType.MANAGEMENT_TO_OPERATION.value,
                "source_payload_type": PayloadType.TASK_RESULT,
            },
        ),
        task_id=result.task_id,
        directive_id=result.metadata.get("directive_id") or None,
    )
