"""Algedonic signals: raise them, handle them at controllers, pause and resume subtrees.

A signal is delivered on the Algedonic channel (priority Interrupt) to the
controller responsible for its target: the target's parent, or the root. The
controller applies the override policy in the order of docs/rules/algedonic.md: freeze
mutation (``workers.signals.mutation_freeze_requested``: the trials app freezes the trial,
once, at the first controller that handles the signal), pause the subtree, resume it,
escalate one hop to its parent (so the signal climbs to the root hop by hop, an event at
every hop), require human confirmation (recorded).

Better than the reference: a task routed into a paused subtree is not an
error. The routing controller holds it (``BlockedRoute``, task status
``blocked_paused``, event ``algedonic_subtree_route_blocked``) and routes it
again as soon as the subtree is resumed.
"""

from __future__ import annotations

from dataclasses import asdict

from django.utils import timezone

from ledger import kinds
from ledger.services import EventDraft, ledger_batch, ledger_record
from organization.genome import ChannelPriority, OrganizationalGenome, VsmChannelType, subtree_ids
from organization.models import LiveTrial, SubtreePause
from organization.selectors import champion_genome, genome_version, pause_covering
from organization.services import subtree_pause, subtree_resume
from workers import signals
from workers.domain.algedonic import Action, AlgedonicSignal, planned_actions
from workers.domain.messages import MessageEnvelope, PayloadType, TaskPacket, to_json
from workers.domain.trial_routing import is_shadow_result
from workers.errors import NoOrganization, Rejected
from workers.events import ancestors_of
from workers.models import AlgedonicSignalRecord, BlockedRoute, Task
from workers.services.hop import Hop
from workers.services.transport import envelope_publish, routed_genome


def responsible_controller(genome: OrganizationalGenome, target: str | None) -> str:
    """Where a signal about ``target`` is handled: its parent, else the root."""
    if target is None or target not in genome.nodes:
        return genome.root_node_id
    return genome.nodes[target].parent_id or target


def signal_raise(
    *, signal: AlgedonicSignal, raised_by: str, caused_by: str | None = None
) -> AlgedonicSignalRecord:
    """Record ``signal`` and send it to the controller responsible for its target.

    Raises Rejected (a 400 at the API) naming the field when the target does not
    exist. Runs in the caller's batch (a leaf's hop) or its own transaction. ``caused_by``:
    the envelope whose hop raised it (its envelope's causation), when a hop did.
    """
    genome = _signal_genome(signal.target_node_id)
    controller = responsible_controller(genome, signal.target_node_id)
    with ledger_batch():
        record = AlgedonicSignalRecord.objects.create(
            id=signal.id,
            source=signal.source.value,
            valence=signal.valence.value,
            severity=signal.severity,
            target_node_id=signal.target_node_id,
            related_task_id=signal.related_task_id,
            related_suggestion_id=signal.related_suggestion_id,
            message=signal.message,
            override_policy=asdict(signal.override_policy) if signal.override_policy else None,
            raised_by=raised_by,
        )
        ledger_record(
            EventDraft(
                kind=kinds.ALGEDONIC_SIGNAL_RAISED,
                actor=raised_by,
                payload={**to_json(signal), "handled_by_controller": controller},
                node_id=signal.target_node_id or controller,
                responsible_ancestor_ids=ancestors_of(genome, signal.target_node_id or controller),
                task_id=signal.related_task_id,
                correlation_id=signal.id,
                genome_id=genome.id,
            )
        )
        envelope_publish(
            envelope=MessageEnvelope(
                channel_type=VsmChannelType.ALGEDONIC,
                source_node_id=signal.target_node_id,
                target_node_id=controller,
                correlation_id=signal.id,
                causation_id=caused_by,
                priority=ChannelPriority.INTERRUPT,
                payload_type=PayloadType.ALGEDONIC_SIGNAL,
                payload=to_json(signal),
                metadata={"raised_by": raised_by},
            ),
            genome=genome,
            task_id=signal.related_task_id,
        )
    return record


def _signal_genome(target: str | None) -> OrganizationalGenome:
    """The genome a signal about ``target`` travels under: the champion's, or, for a node
    only a live trial's candidate has (a leaf its patch added), that candidate's."""
    genome = champion_genome()
    if genome is None:
        raise NoOrganization()
    if target is None or target in genome.nodes:
        return genome
    candidate_ids = LiveTrial.objects.order_by("controller_node_id").values_list(
        "candidate_version_id", flat=True
    )
    for version_id in candidate_ids:
        candidate = genome_version(version_id=version_id)
        if target in candidate.nodes:
            return candidate
    raise Rejected({"target_node_id": [f"No node is called {target!r}."]})


def on_algedonic_signal(hop: Hop, signal: AlgedonicSignal) -> None:
    """Apply a signal's override policy here (docs/rules/algedonic.md, "Handling order")."""
    hop.event(
        kinds.ALGEDONIC_SIGNAL_RECEIVED,
        {**to_json(signal), "controller_node_id": hop.node_id},
        task_id=signal.related_task_id,
        suggestion_id=signal.related_suggestion_id,
    )
    actions = planned_actions(signal.override_policy)
    if not actions:
        return
    target = signal.target_node_id or hop.node_id
    applied: list[str] = []
    for action in actions:
        if action is Action.FREEZE_MUTATION:
            applied.extend(_freeze(hop, signal))
        elif action is Action.PAUSE_SUBTREE:
            _pause(hop, signal, target)
            applied.append(f"subtree_paused={target}")
        elif action is Action.RESUME_SUBTREE:
            _resume(hop, signal, target)
            applied.append(f"subtree_resumed={target}")
        elif action is Action.ESCALATE:
            applied.append(_escalate(hop, signal, target))
        else:
            applied.append("require_human_confirmation")
    hop.event(
        kinds.ALGEDONIC_OVERRIDE_APPLIED,
        {
            "source_channel": hop.incoming.channel_type.value,
            "valence": signal.valence.value,
            "severity": signal.severity,
            "target_node_id": target,
            "message": signal.message,
            "actions": applied,
            "policy": to_json(signal.override_policy),
        },
        task_id=signal.related_task_id,
    )


def _freeze(hop: Hop, signal: AlgedonicSignal) -> list[str]:
    """Ask the trials app to freeze the signal's suggestion, else this controller's trial.

    An escalated signal was offered to the first controller that handled it: the ancestors
    on its way up do not freeze their own trials too (the reference kernel did, at every
    hop). A named suggestion is offered again at each hop; freezing it is idempotent.
    Receivers return the actions they applied; with none, the freeze is only recorded.
    """
    escalated = hop.incoming.metadata.get("algedonic_escalation") == "true"
    if escalated and signal.related_suggestion_id is None:
        return ["freeze_mutation_applied_below"]
    responses = signals.mutation_freeze_requested.send(
        sender=hop.node_id,
        controller_node_id=hop.node_id,
        suggestion_id=signal.related_suggestion_id,
        message=signal.message,
        event_context=hop.event_context(),
    )
    actions = [str(action) for _, applied in responses for action in (applied or [])]
    return actions or ["freeze_mutation_recorded"]


def _pause(hop: Hop, signal: AlgedonicSignal, target: str) -> None:
    policy = signal.override_policy
    hop.pauses_exist = True  # what the hop read before this pause no longer holds
    subtree_pause(
        node_id=target,
        signal_id=signal.id,
        paused_by=hop.node_id,
        reason=signal.message or "algedonic pause_subtree",
        severity=min(signal.severity, 10),
        require_human_confirmation=bool(policy and policy.require_human_confirmation),
        valence=signal.valence.value,
        source=signal.source.value,
        event_context=hop.event_context(),
    )


def _resume(hop: Hop, signal: AlgedonicSignal, target: str) -> None:
    inside = subtree_ids(hop.genome, target)[1:] if target in hop.genome.nodes else []
    subtree_resume(
        node_id=target,
        descendant_ids=inside,
        signal_id=signal.id,
        event_context=hop.event_context(),
    )
    release_blocked_routes(hop)


def _escalate(hop: Hop, signal: AlgedonicSignal, target: str) -> str:
    parent_id = hop.genome.nodes[hop.node_id].parent_id
    if parent_id is None:
        hop.event(
            kinds.ALGEDONIC_ESCALATION_AT_ROOT,
            {"target_node_id": target, "severity": signal.severity, "message": signal.message},
        )
        return "escalation_at_root"
    hop.event(
        kinds.ALGEDONIC_ESCALATED,
        {
            "from_node_id": hop.node_id,
            "to_node_id": parent_id,
            "target_node_id": target,
            "severity": signal.severity,
            "message": signal.message,
        },
    )
    incoming = hop.incoming
    hop.publish(
        MessageEnvelope(
            channel_type=VsmChannelType.ALGEDONIC,
            source_node_id=hop.node_id,
            target_node_id=parent_id,
            correlation_id=hop.correlation_id,
            causation_id=incoming.id,
            priority=ChannelPriority.INTERRUPT,
            payload_type=PayloadType.ALGEDONIC_SIGNAL,
            payload=to_json(signal),
            trace=[*incoming.trace, hop.node_id],
            metadata={"algedonic_escalation": "true", "escalated_by_node_id": hop.node_id},
        )
    )
    return "escalated_to_parent"


# -- the effect of a pause on routing -----------------------------------------


def paused(
    genome: OrganizationalGenome, node_id: str, *, hop: Hop | None = None
) -> SubtreePause | None:
    """The pause holding ``node_id``; no read when ``hop`` found no pause anywhere."""
    if hop is not None and not hop.pauses_exist:
        return None
    return pause_covering(node_id=node_id, ancestor_ids=ancestors_of(genome, node_id))


def hold_if_paused(hop: Hop, task: TaskPacket, child_id: str) -> bool:
    """If ``child_id``'s subtree is paused, hold the task here until it resumes."""
    pause = paused(hop.genome, child_id, hop=hop)
    if pause is None:
        return False
    BlockedRoute.objects.create(
        task_id=task.id,
        directive_id=task.directive_id,
        controller_node_id=hop.node_id,
        child_node_id=child_id,
        paused_node_id=pause.node_id,
        packet=to_json(task),
        correlation_id=hop.correlation_id,
        genome_id=hop.genome.id,
    )
    if not is_shadow_result(task.metadata):  # a shadow copy is not the task's route
        Task.objects.filter(id=task.id).update(
            status=Task.Status.BLOCKED_PAUSED, assigned_node_id=child_id, updated_at=timezone.now()
        )
    hop.event(
        kinds.ALGEDONIC_SUBTREE_ROUTE_BLOCKED,
        {
            "controller_node_id": hop.node_id,
            "child_node_id": child_id,
            "task_id": task.id,
            "task_title": task.title,
            "paused_target_node_id": pause.node_id,
            "paused_at": pause.paused_at.isoformat(),
            "reason": pause.reason,
            "severity": pause.severity,
            "require_human_confirmation": pause.require_human_confirmation,
            "source_channel": hop.incoming.channel_type.value,
        },
        task_id=task.id,
        directive_id=task.directive_id,
    )
    return True


def release_blocked_routes(hop: Hop) -> int:
    """Send every held task whose child is no longer paused back to the controller holding it.

    The holder sends the task to itself under the genome version it was routed under,
    so it is routed again by the same rules and keeps the channel it arrived on.
    """
    released = 0
    for held in BlockedRoute.objects.select_for_update().filter(released_at__isnull=True):
        genome = routed_genome(held.genome_id)
        if held.child_node_id not in genome.nodes:
            continue
        if paused(genome, held.child_node_id) is not None:
            continue
        held.released_at = timezone.now()
        held.save(update_fields=["released_at"])
        envelope_publish(
            envelope=MessageEnvelope(
                channel_type=VsmChannelType.RESOURCE_BARGAINING,
                source_node_id=held.controller_node_id,
                target_node_id=held.controller_node_id,
                correlation_id=held.correlation_id,
                causation_id=hop.incoming.id,
                payload_type=PayloadType.TASK_PACKET,
                payload=held.packet,
                metadata={"released_after_pause_of": held.paused_node_id},
            ),
            genome=genome,
            task_id=held.task_id,
            directive_id=held.directive_id,
        )
        released += 1
    return released
