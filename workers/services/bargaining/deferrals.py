"""Work a leaf could not start for want of a grant: deferring it and sending it back."""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from ledger import kinds
from ledger.services import EventDraft, ledger_batch, ledger_record
from organization.genome import OrganizationalGenome, VsmChannelType
from organization.selectors import champion_genome
from workers.domain.algedonic import AlgedonicSignal, OverridePolicy, SignalSource
from workers.domain.bargaining import EpochUsage, remaining_messages, remaining_tokens
from workers.domain.messages import MessageEnvelope, PayloadType, TaskPacket, to_json
from workers.errors import NoOrganization, Rejected
from workers.events import ancestors_of
from workers.models import DeferredTask, ResourceEpoch, ResourceGrant, Task
from workers.services.algedonic import signal_raise
from workers.services.bargaining.grants import current_epoch_key, epoch_budgets, lock_epoch
from workers.services.hop import Hop
from workers.services.transport import envelope_publish, routed_genome

logger = logging.getLogger(__name__)

PAIN_SEVERITY = 5


class GrantRejected(Rejected):
    """An operator grant that cannot be applied; ``errors`` maps field → messages."""


def task_defer(hop: Hop, *, grant: ResourceGrant, task: TaskPacket) -> DeferredTask:
    """Hold ``task`` at the routing controller until the edge has budget again; raise one
    pain signal per edge and epoch.

    Runs inside the routing hop's transaction, which already holds the epoch row's lock
    (the grant was just decided under it).
    """
    genome, correlation_id = hop.genome, hop.correlation_id
    epoch = ResourceEpoch.objects.select_for_update().get(id=grant.epoch_id)
    reason = "; ".join(grant.reasons) or "resource grant denied"
    deferred = DeferredTask.objects.create(
        task_id=task.id,
        directive_id=task.directive_id,
        controller_node_id=epoch.controller_node_id,
        requester_node_id=epoch.requester_node_id,
        epoch_key=epoch.epoch_key,
        grant=grant,
        reason=reason,
        packet=to_json(task),
        correlation_id=correlation_id,
        genome_id=genome.id,
    )
    Task.objects.filter(id=task.id).update(
        status=Task.Status.DEFERRED_BUDGET,
        assigned_node_id=epoch.requester_node_id,
        updated_at=timezone.now(),
    )
    ledger_record(
        EventDraft(
            kind=kinds.RESOURCE_TASK_DEFERRED,
            actor=f"node:{epoch.requester_node_id}",
            payload={
                "task_id": task.id,
                "task_title": task.title,
                "controller_node_id": epoch.controller_node_id,
                "requester_node_id": epoch.requester_node_id,
                "grant_id": grant.id,
                "resource_epoch_key": epoch.epoch_key,
                "reasons": list(grant.reasons),
            },
            node_id=epoch.requester_node_id,
            responsible_ancestor_ids=ancestors_of(genome, epoch.requester_node_id),
            task_id=task.id,
            directive_id=task.directive_id,
            correlation_id=correlation_id,
            genome_id=genome.id,
        )
    )
    if epoch.extra_granted_at is not None and epoch.extra_granted_at >= grant.created_at:
        # An operator added budget after this grant was refused and before this deferral
        # could be seen: the extra grant released nothing of ours, so release it now.
        _release([deferred], released_by="extra_grant")
        return deferred
    if not epoch.pain_signal_id:
        record = signal_raise(
            signal=AlgedonicSignal(
                source=SignalSource.COST_MONITOR,
                severity=PAIN_SEVERITY,
                target_node_id=epoch.requester_node_id,
                related_task_id=task.id,
                override_policy=OverridePolicy(escalate_to_root=True),
                message=(
                    f"{epoch.requester_node_id} deferred task {task.id}: {epoch.controller_node_id}"
                    f" denied its resource grant for epoch {epoch.epoch_key} ({reason})"
                ),
            ),
            raised_by=f"node:{epoch.controller_node_id}",
        )
        epoch.pain_signal_id = record.id
        epoch.save(update_fields=["pain_signal_id", "updated_at"])
    return deferred


def deferred_release(*, now: datetime | None = None) -> int:
    """Send every task deferred in an epoch that has passed back to its controller.

    Returns how many were released. Safe to run concurrently: rows are locked and a
    released row is skipped.
    """
    key = current_epoch_key(now)
    with ledger_batch():
        waiting = DeferredTask.objects.select_for_update().filter(
            released_at__isnull=True, epoch_key__lt=key
        )
        return _release(list(waiting), released_by="new_epoch")


def grant_extra_tokens(
    *,
    controller_node_id: str,
    requester_node_id: str,
    tokens: int,
    actor: str,
    messages: int = 0,
) -> tuple[ResourceEpoch, int]:
    """Raise an edge's budgets for the current epoch and release the tasks it deferred.

    Returns the epoch row and how many deferred tasks went back to the controller.
    Raises GrantRejected, changing nothing, for unknown nodes, a pair that is not a
    parent→child edge, non-positive tokens or negative messages.
    """
    genome = _edge_genome(controller_node_id, requester_node_id, tokens, messages)
    key = current_epoch_key()
    with ledger_batch():
        epoch = lock_epoch(key, controller_node_id, requester_node_id)
        epoch.extra_tokens += tokens
        epoch.extra_messages += messages
        epoch.extra_granted_at = timezone.now()
        epoch.save(
            update_fields=["extra_tokens", "extra_messages", "extra_granted_at", "updated_at"]
        )
        # Locked before the ledger head, as deferred_release locks them: one order, no deadlock.
        waiting = list(
            DeferredTask.objects.select_for_update().filter(
                released_at__isnull=True,
                controller_node_id=controller_node_id,
                requester_node_id=requester_node_id,
            )
        )
        budgets = epoch_budgets(genome, epoch)
        usage = EpochUsage(
            allocation_count=epoch.allocation_count, allocated_tokens=epoch.allocated_tokens
        )
        ledger_record(
            EventDraft(
                kind=kinds.RESOURCE_EXTRA_GRANTED,
                actor=actor,
                payload={
                    "controller_node_id": controller_node_id,
                    "requester_node_id": requester_node_id,
                    "resource_epoch_key": key,
                    "tokens": tokens,
                    "messages": messages,
                    "extra_tokens": epoch.extra_tokens,
                    "extra_messages": epoch.extra_messages,
                    "budget_tokens": budgets.tokens,
                    "remaining_tokens": remaining_tokens(budgets, usage),
                    "remaining_messages": remaining_messages(budgets, usage),
                },
                node_id=controller_node_id,
                responsible_ancestor_ids=ancestors_of(genome, controller_node_id),
                genome_id=genome.id,
            )
        )
        released = _release(waiting, released_by=f"extra_grant:{actor}")
    return epoch, released


def _edge_genome(
    controller_node_id: str, requester_node_id: str, tokens: int, messages: int
) -> OrganizationalGenome:
    errors: dict[str, list[str]] = {}
    genome = champion_genome()
    if genome is None:
        raise NoOrganization()
    for field, node_id in (
        ("controller_node_id", controller_node_id),
        ("requester_node_id", requester_node_id),
    ):
        if node_id not in genome.nodes:
            errors[field] = [f"No node is called {node_id!r}."]
    if not errors and requester_node_id not in genome.nodes[controller_node_id].children:
        errors["requester_node_id"] = [
            f"{requester_node_id!r} is not a direct child of {controller_node_id!r}."
        ]
    if tokens <= 0:
        errors["tokens"] = ["Must be a positive number of tokens."]
    if messages < 0:
        errors["messages"] = ["Must not be negative."]
    if errors:
        raise GrantRejected(errors)
    return genome


def _release(waiting: list[DeferredTask], *, released_by: str) -> int:
    """Send each deferred task back to its controller to be routed (and granted) again,
    under the genome version it was routed under."""
    released = 0
    for deferred in waiting:
        genome = routed_genome(deferred.genome_id)
        controller_id = deferred.controller_node_id
        if controller_id not in genome.nodes:
            logger.warning(
                "deferred task %s waits at %s, which left the genome; leaving it held",
                deferred.task_id,
                controller_id,
            )
            continue
        deferred.released_at, deferred.released_by = timezone.now(), released_by
        deferred.save(update_fields=["released_at", "released_by"])
        ledger_record(
            EventDraft(
                kind=kinds.RESOURCE_DEFERRED_TASK_RELEASED,
                actor=f"node:{controller_id}",
                payload={
                    "task_id": deferred.task_id,
                    "controller_node_id": controller_id,
                    "requester_node_id": deferred.requester_node_id,
                    "resource_epoch_key": deferred.epoch_key,
                    "released_by": released_by,
                },
                node_id=controller_id,
                responsible_ancestor_ids=ancestors_of(genome, controller_id),
                task_id=deferred.task_id,
                directive_id=deferred.directive_id,
                correlation_id=deferred.correlation_id,
                genome_id=genome.id,
            )
        )
        envelope_publish(
            envelope=MessageEnvelope(
                channel_type=VsmChannelType.RESOURCE_BARGAINING,
                source_node_id=controller_id,
                target_node_id=controller_id,
                correlation_id=deferred.correlation_id,
                payload_type=PayloadType.TASK_PACKET,
                payload=deferred.packet,
                metadata=_released_metadata(deferred, released_by),
            ),
            genome=genome,
            task_id=deferred.task_id,
            directive_id=deferred.directive_id,
        )
        released += 1
    return released


def _released_metadata(deferred: DeferredTask, released_by: str) -> dict[str, str]:
    return {
        "released_after_deferral_of": deferred.requester_node_id,
        "resource_deferred_epoch_key": deferred.epoch_key,
        "resource_released_by": released_by,
    }
