"""The routing controller's side of its live trial (docs/rules/trials.md, "Routing modes").

A controller with a ``LiveTrial`` row decides per task, with the pure rules of
``workers.domain.trial_routing``, whether the trial's candidate genome handles it (control)
or sees a copy of it (shadow); ``workers.services.controller.routing`` sends it. This module
holds what that needs from the database and the ledger:

* which genome the *champion* route runs under: the hop's, except in a hop under a
  candidate version (a trial task's result came back, or a task held on the candidate
  route was released): follow-ups then route on the candidate's base, so only tasks the
  trial policy chose run under the candidate;
* whether a task is a trial task in flight (an ancestor's trial sent it down under the
  candidate): it keeps its genome and tags, and this controller's own trial stays out;
* the candidate route itself (the candidate genome's router, the tags);
* counting a routed task on the row (a conditional ``UPDATE``, so concurrent hops never
  route more than ``max_tasks``) and, as results arrive, the tokens the trial consumed;
* the trial evidence signal the trials app answers.

``workers`` never imports ``trials``: the row is ``organization``'s and the rest are ledger
events and ``workers.signals``.

Lock order: a hop routes its first task only after locking its controller's ``LiveTrial``
row (the router's read of it is ``FOR UPDATE``), and writes it (consumed tokens) before it
routes anything, so the row is always locked before any ``ResourceEpoch`` row (a grant) and
two hops at one controller never wait for each other in a cycle. The cost: hops that route
at a controller with a live trial take turns.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

from django.db.models import F, QuerySet

from ledger.compiled import READINGS
from ledger.models import TaskTrace
from organization.genome import OrganizationalGenome
from organization.models import LiveTrial
from organization.selectors import (
    VersionNotFound,
    champion_version_id,
    genome_version,
    live_trial,
    live_trial_possible,
)
from organization.services import CANDIDATE_BASE_KEY
from workers import events, signals
from workers.domain.messages import TaskPacket, TaskResult
from workers.domain.routing import RoutingError, route
from workers.domain.trial_routing import (
    APPROVAL_KEY,
    CANDIDATE_GENOME_ID,
    ROUTE_ROLE,
    TRIAL_CONTROLLER,
    TRIAL_ID,
    RouteRole,
    TrialMode,
    TrialPolicy,
    candidate_controller_refusal,
    control_refusal,
    is_shadow_result,
    related_suggestion,
    shadow_refusal,
    task_bucket,
    trial_tags,
    without_trial_tags,
)
from workers.services.hop import Hop

logger = logging.getLogger(__name__)

FALLBACK_REASON = "candidate route unavailable; falling back to champion routing"


def policy_of(row: LiveTrial) -> TrialPolicy:
    return TrialPolicy(
        trial_id=row.trial_id,
        controller_node_id=row.controller_node_id,
        candidate_genome_id=row.candidate_version_id,
        base_genome_id=row.base_version_id,
        mode=TrialMode(row.mode),
        traffic_share_basis_points=row.traffic_share_basis_points,
        requires_approval=row.requires_approval,
        approved=row.approved,
        max_tasks=row.max_tasks,
        max_token_budget=row.max_token_budget,
        max_files_touched=row.max_files_touched,
        allowed_task_classes=tuple(row.allowed_task_classes or ()),
        routed_tasks=row.routed_tasks,
        consumed_tokens=row.consumed_tokens,
    )


def live_policy(controller_node_id: str) -> TrialPolicy | None:
    """The controller's live trial as its router sees it: one primary-key read, which locks
    the row (see the lock order above) until the hop commits."""
    if not live_trial_possible(controller_node_id=controller_node_id):
        return None
    found = READINGS.first(
        ("live trial at, for update", controller_node_id),
        lambda: LiveTrial.objects.select_for_update().filter(controller_node_id=controller_node_id),
    )
    return None if found is None else policy_of(found)


# -- which genome, which task ---------------------------------------------------


def champion_hop(hop: Hop) -> Hop:
    """The hop the champion route runs in: ``hop`` itself, or, when ``hop`` runs under a
    trial's candidate version that is not the champion, the same hop under its base."""
    base_id = hop.genome.metadata.get(CANDIDATE_BASE_KEY)
    if not base_id or hop.genome.id == champion_version_id():
        return hop  # not a candidate, or one since promoted as it is
    try:
        base = genome_version(version_id=str(base_id))
    except VersionNotFound:
        logger.error("candidate %s names a missing base %s", hop.genome.id, base_id)
        return hop
    if hop.node_id not in base.nodes:
        return hop  # a controller only the candidate has: its work stays there
    return Hop(hop.node_id, base, hop.incoming)


def in_flight(hop: Hop, task: TaskPacket) -> bool:
    """``task`` was sent down by an ancestor's trial under the candidate this hop runs
    under: it goes on under it, tags and all, whatever this controller's own trial."""
    metadata = task.metadata
    return (
        bool(metadata.get(TRIAL_ID))
        and metadata.get(TRIAL_CONTROLLER) != hop.node_id
        and metadata.get(CANDIDATE_GENOME_ID) == hop.genome.id
    )


def own_trial_task(hop: Hop, task: TaskPacket) -> tuple[str | None, bool]:
    """For a task this controller's trial routed before (handed back by a paused candidate
    leaf and released): its trial id and whether it was a shadow copy."""
    metadata = task.metadata
    if metadata.get(TRIAL_CONTROLLER) != hop.node_id or not metadata.get(TRIAL_ID):
        return None, False
    return metadata[TRIAL_ID], is_shadow_result(metadata)


def untagged(task: TaskPacket) -> TaskPacket:
    """The task as a router decides it: without tags an earlier trial route wrote."""
    if not any(key.startswith("trial_") for key in task.metadata):
        return task
    plain = copy.deepcopy(task)
    plain.metadata = without_trial_tags(task.metadata)
    return plain


# -- the candidate route ---------------------------------------------------------


@dataclass(frozen=True)
class TrialRoute:
    """Where the candidate sends a task: its hop (under the candidate genome), its child, the
    tagged task and why."""

    hop: Hop
    policy: TrialPolicy
    role: RouteRole
    child_id: str
    reason: str
    task: TaskPacket
    bucket: int


@dataclass(frozen=True)
class NoTrialRoute:
    """Why the candidate does not get the task; ``fallback`` when that is worth an event
    (the candidate's router failed, or the task asked for the trial and cannot have it)."""

    reason: str
    fallback: bool = False


def candidate_route(
    hop: Hop, task: TaskPacket, policy: TrialPolicy, role: RouteRole
) -> TrialRoute | NoTrialRoute:
    """The route the trial's candidate takes for ``task`` (``hop`` is the champion's)."""
    refusal = (control_refusal if role is RouteRole.CONTROL else shadow_refusal)(policy, task)
    approved_task = role is RouteRole.CONTROL and APPROVAL_KEY in task.metadata
    if refusal is None and hop.genome.id != policy.base_genome_id:
        refusal = (
            f"the task was routed under genome {hop.genome.id}, not the trial's base "
            f"{policy.base_genome_id}"
        )
    if refusal is not None:
        return NoTrialRoute(refusal, fallback=approved_task)
    try:
        candidate = genome_version(version_id=policy.candidate_genome_id)
    except VersionNotFound:
        return NoTrialRoute(f"candidate genome {policy.candidate_genome_id} is missing", True)
    refusal = candidate_controller_refusal(candidate, hop.node_id)
    if refusal is not None:
        return NoTrialRoute(refusal, fallback=approved_task)
    try:
        decision = route(candidate, hop.node_id, task)
    except RoutingError as error:
        return NoTrialRoute(f"the candidate's router failed: {error}", fallback=True)
    bucket = task_bucket(policy, task)
    tagged = copy.deepcopy(task)
    tagged.metadata = {**task.metadata, **trial_tags(policy, role, bucket)}
    return TrialRoute(
        hop=_under(hop, candidate),
        policy=policy,
        role=role,
        child_id=decision.child_id,
        reason=f"trial {policy.trial_id}: {decision.reason}",
        task=tagged,
        bucket=bucket,
    )


def _under(hop: Hop, genome: OrganizationalGenome) -> Hop:
    return Hop(hop.node_id, genome, hop.incoming)


def fallback_recorded(
    hop: Hop, task: TaskPacket, policy: TrialPolicy, *, role: RouteRole, reason: str
) -> None:
    if role is RouteRole.CONTROL and APPROVAL_KEY in task.metadata:
        reason = f"{FALLBACK_REASON}: {reason}"
    hop.record(
        events.trial_route_fallback(task, trial_id=policy.trial_id, role=role.value, reason=reason)
    )


def slot_claim(policy: TrialPolicy) -> bool:
    """Count one routed task on the live trial; False when ``max_tasks`` is reached (or the
    trial closed) since it was read. The row stays locked until the hop commits."""

    def claim() -> tuple[QuerySet[LiveTrial], dict[str, Any]]:
        rows = LiveTrial.objects.filter(
            controller_node_id=policy.controller_node_id, trial_id=policy.trial_id
        )
        if policy.max_tasks is not None:
            rows = rows.filter(routed_tasks__lt=policy.max_tasks)
        return rows, {"routed_tasks": F("routed_tasks") + 1}

    key = ("trial slot claim", policy.controller_node_id, policy.trial_id, policy.max_tasks)
    return READINGS.update(key, claim) == 1


def slot_release(policy: TrialPolicy) -> None:
    """Give back a claimed slot: the candidate's child was paused or its grant denied."""
    LiveTrial.objects.filter(
        controller_node_id=policy.controller_node_id,
        trial_id=policy.trial_id,
        routed_tasks__gt=0,
    ).update(routed_tasks=F("routed_tasks") - 1)


def routed_recorded(found: TrialRoute) -> None:
    policy = found.policy
    found.hop.record(
        events.trial_task_routed(
            found.task,
            trial_id=policy.trial_id,
            child_node_id=found.child_id,
            candidate_genome_id=policy.candidate_genome_id,
            trial_mode=policy.mode.value,
            role=found.role.value,
            exposure_basis_points=policy.traffic_share_basis_points,
            exposure_bucket=found.bucket,
        )
    )


# -- results -----------------------------------------------------------------------


def result_observed(hop: Hop, result: TaskResult) -> bool:
    """What a result means for trials at this controller; True when it stops here.

    A shadow result stops at the controller whose trial sent the copy (or at the root, so it
    can never settle a task): recorded, not forwarded. A result of this controller's live
    trial adds its trace's tokens to the trial's consumption. Any result of either arm (the
    trial's, or the champion's from this subtree) tells the trials app that evidence arrived.
    """
    metadata = result.metadata
    stops = is_shadow_result(metadata) and (
        metadata.get(TRIAL_CONTROLLER) == hop.node_id or hop.parent_id is None
    )
    if stops:
        hop.record(
            events.trial_shadow_result_recorded(
                result,
                trial_id=related_suggestion(metadata) or "",
                controller_node_id=hop.node_id,
            )
        )
    if not live_trial_possible(controller_node_id=hop.node_id):
        return stops
    row = live_trial(controller_node_id=hop.node_id)
    if row is None:
        return stops
    suggestion = related_suggestion(metadata)
    if suggestion not in (None, row.trial_id):
        return stops  # another controller's trial: evidence for neither arm of ours
    trace_id = metadata.get("trace_id") or None
    if suggestion == row.trial_id:
        _tokens_consumed(row, trace_id)
    signals.trial_evidence_arrived.send(
        sender=hop.node_id,
        trial_id=row.trial_id,
        controller_node_id=hop.node_id,
        task_id=result.task_id,
        trace_id=trace_id,
        trial_route_role=metadata.get(ROUTE_ROLE, "") if suggestion else "",
    )
    return stops


def _tokens_consumed(row: LiveTrial, trace_id: str | None) -> None:
    if trace_id is None:
        return  # a routing failure: nothing ran, nothing spent
    counts = READINGS.rows(
        ("trace tokens",),
        lambda t: TaskTrace.objects.filter(id=t).values_list("input_tokens", "output_tokens"),
        trace_id,
    )
    if not counts:
        logger.warning("trial %s result names trace %s, which is missing", row.trial_id, trace_id)
        return
    found = counts[0]
    tokens = int(found[0] or 0) + int(found[1] or 0)
    if tokens:
        LiveTrial.objects.filter(
            controller_node_id=row.controller_node_id, trial_id=row.trial_id
        ).update(consumed_tokens=F("consumed_tokens") + tokens)
