"""Asking for a grant, deciding it under the epoch row's lock, and recording what was used."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from ledger import kinds
from ledger.compiled import READINGS, save_fields
from ledger.services import EventDraft, ledger_batch, ledger_batch_insert, ledger_record
from organization.genome import OrganizationalGenome
from organization.selectors import champion_genome
from workers.domain.bargaining import (
    Budgets,
    EpochUsage,
    PauseFacts,
    ResourceAllocationDecision,
    ResourceBargain,
    decide,
    decision_event_payload,
    decision_metadata,
    edge_budgets,
    epoch_key,
)
from workers.domain.messages import TaskPacket
from workers.domain.prompt import build_model_request
from workers.events import ancestors_of
from workers.models import ResourceEpoch, ResourceGrant
from workers.providers.base import rough_token_estimate
from workers.services.algedonic import paused
from workers.services.hop import Hop
from workers.services.pressure import grant_pressures


def current_epoch_key(now: datetime | None = None) -> str:
    """The key of the epoch holding ``now`` (default: this instant), ``VSM_EPOCH_SECONDS`` long."""
    return epoch_key(now or timezone.now(), epoch_seconds=settings.VSM_EPOCH_SECONDS)


def leaf_token_request(genome: OrganizationalGenome, node_id: str, task: TaskPacket) -> int:
    """How many tokens a leaf asks for to run ``task`` (see the module docstring)."""
    node = genome.nodes[node_id]
    if node.context_policy.max_total_task_tokens is not None:
        return node.context_policy.max_total_task_tokens
    controller = genome.nodes.get(node.parent_id or "")
    if controller is not None and controller.system_3.default_task_budget_tokens is not None:
        return controller.system_3.default_task_budget_tokens
    request = build_model_request(genome, node_id, task)
    return rough_token_estimate(f"{request.instructions}\n{request.input}")


def grant_for_route(hop: Hop, task: TaskPacket, child_id: str) -> ResourceGrant:
    """The grant ``hop``'s controller makes its leaf ``child_id`` for ``task``, as it routes it.

    Decided in the routing hop's transaction, under its genome version.
    """
    return grant_request(
        controller_node_id=hop.node_id,
        bargain=ResourceBargain(
            requested_by=child_id,
            task_id=task.id,
            requested_tokens=leaf_token_request(hop.genome, child_id, task),
            justification=task.title,
        ),
        directive_id=task.directive_id,
        correlation_id=hop.correlation_id,
        genome=hop.genome,
        pause_checked=True,
    )


def grant_request(
    *,
    controller_node_id: str,
    bargain: ResourceBargain,
    envelope_id: str | None = None,
    directive_id: str | None = None,
    correlation_id: str | None = None,
    now: datetime | None = None,
    genome: OrganizationalGenome | None = None,
    pause_checked: bool = False,
) -> ResourceGrant:
    """Decide ``bargain`` at ``controller_node_id`` and record the decision, in one transaction
    (the caller's, when one is open).

    Invariant: see the module docstring (the epoch row is locked for the whole decision).
    Given the ``envelope_id`` that asked, a redelivery gets the grant its first delivery got
    instead of a second one. Never raises for a bad bargain (an unknown node, a non-child):
    that is a Denied decision. Raises ``RuntimeError`` only when there is no organization.
    ``pause_checked``: the caller (a routing controller) has just found the requester's
    subtree unpaused in this transaction, so it is not read again.
    """
    genome = genome or champion_genome()
    if genome is None:
        raise RuntimeError("there is no organization yet")
    moment = now or timezone.now()
    with ledger_batch():
        epoch = lock_epoch(current_epoch_key(moment), controller_node_id, bargain.requested_by)
        if envelope_id is not None:
            earlier = (
                ResourceGrant.objects.filter(envelope_id=envelope_id)
                .exclude(status=ResourceGrant.Status.DENIED)
                .first()
            )
            if earlier is not None:
                return earlier
        decision, metadata = _decide_locked(genome, epoch, bargain, moment, pause_checked)
        if decision.uses_message_budget:
            epoch.allocation_count += 1
            epoch.allocated_tokens += decision.approved_tokens or 0
            save_fields(epoch, "allocation_count", "allocated_tokens", "updated_at")
        payload = decision_event_payload(decision)
        grant = ResourceGrant(
            epoch=epoch,
            task_id=decision.task_id,
            envelope_id=envelope_id,
            status=decision.status.value,
            requested_tokens=bargain.requested_tokens,
            approved_tokens=decision.approved_tokens,
            reasons=list(decision.reasons),
            decision=payload,
            metadata=metadata,
        )
        ledger_batch_insert(grant)  # with the append: nothing in the hop reads it back
        ledger_record(
            EventDraft(
                kind=kinds.RESOURCE_ALLOCATION_DECISION,
                actor=f"node:{controller_node_id}",
                # The ledger has no metadata column: the decision's metadata rides in the payload.
                payload={**payload, "grant_id": grant.id, "metadata": metadata},
                node_id=controller_node_id,
                responsible_ancestor_ids=ancestors_of(genome, controller_node_id),
                task_id=decision.task_id,
                directive_id=directive_id,
                correlation_id=correlation_id,
                genome_id=genome.id,
            )
        )
    return grant


def _decide_locked(
    genome: OrganizationalGenome,
    epoch: ResourceEpoch,
    bargain: ResourceBargain,
    moment: datetime,
    pause_checked: bool,
) -> tuple[ResourceAllocationDecision, dict[str, str]]:
    """The pure decision on what the locked epoch row, the ledger and the pauses say now."""
    controller_id, requester_id = epoch.controller_node_id, epoch.requester_node_id
    usage = EpochUsage(
        allocation_count=epoch.allocation_count, allocated_tokens=epoch.allocated_tokens
    )
    budgets = epoch_budgets(genome, epoch)
    pause = None if pause_checked else _pause_of(genome, requester_id)
    coordination, environment = grant_pressures(
        controller_node_id=controller_id, requester_node_id=requester_id
    )
    decision = decide(
        bargain,
        genome=genome,
        controller_id=controller_id,
        usage=usage,
        pause=pause,
        coordination=coordination,
        environment=environment,
        budgets=budgets,
        now=moment,
    )
    metadata = decision_metadata(
        decision,
        epoch_key=epoch.epoch_key,
        budgets=budgets,
        usage=usage,
        coordination=coordination,
        environment=environment,
        pause=pause,
    )
    return decision, metadata


def grant_usage(*, grant_id: str, used_tokens: int) -> None:
    """Record the tokens a leaf used under a grant; the first report wins (redeliveries).

    Two conditional updates, no read: the grant (only while unreported), then its epoch (one
    data-modifying statement on PostgreSQL). Nobody locks a grant row while holding its epoch
    row, so the order cannot deadlock.
    """
    used = max(used_tokens, 0)
    now = timezone.now()
    if connection.vendor == "postgresql":
        # The same two updates, in this order, as one statement.
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH reported AS (UPDATE {ResourceGrant._meta.db_table} "
                "SET used_tokens = %s, used_at = %s WHERE id = %s AND used_tokens IS NULL "
                f"RETURNING epoch_id) UPDATE {ResourceEpoch._meta.db_table} "
                "SET used_tokens = used_tokens + %s, updated_at = %s "
                "WHERE id IN (SELECT epoch_id FROM reported)",
                [used, now, grant_id, used, now],
            )
        return
    stamp = connection.ops.adapt_datetimefield_value(now)
    grants, epochs = ResourceGrant._meta.db_table, ResourceEpoch._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {grants} SET used_tokens = %s, used_at = %s "
            "WHERE id = %s AND used_tokens IS NULL",
            [used, stamp, grant_id],
        )
        if cursor.rowcount == 1:
            cursor.execute(
                f"UPDATE {epochs} SET used_tokens = used_tokens + %s, updated_at = %s "
                f"WHERE id = (SELECT epoch_id FROM {grants} WHERE id = %s)",
                [used, stamp, grant_id],
            )


def epoch_budgets(genome: OrganizationalGenome, epoch: ResourceEpoch) -> Budgets:
    """The edge's budgets from the genome, raised by what operators added this epoch.

    Extras raise only a budget that exists: an edge without one is unlimited already.
    """
    base = edge_budgets(genome, epoch.controller_node_id, epoch.requester_node_id)
    return Budgets(
        tokens=None if base.tokens is None else base.tokens + epoch.extra_tokens,
        messages=None if base.messages is None else base.messages + epoch.extra_messages,
    )


def lock_epoch(key: str, controller_node_id: str, requester_node_id: str) -> ResourceEpoch:
    """The edge's row for the epoch, created if missing, locked until the transaction ends."""
    ids = {
        "epoch_key": key,
        "controller_node_id": controller_node_id,
        "requester_node_id": requester_node_id,
    }
    epoch: ResourceEpoch | None = READINGS.first(
        ("epoch for update", key, controller_node_id, requester_node_id),
        lambda: ResourceEpoch.objects.select_for_update().filter(**ids),
    )
    if epoch is not None:
        return epoch
    # ON CONFLICT DO NOTHING: two first grants of an epoch race to create the row, and the
    # loser must not abort its transaction on the unique constraint.
    ResourceEpoch.objects.bulk_create([ResourceEpoch(**ids)], ignore_conflicts=True)
    return ResourceEpoch.objects.select_for_update().get(**ids)


def _pause_of(genome: OrganizationalGenome, node_id: str) -> PauseFacts | None:
    pause = paused(genome, node_id)
    if pause is None:
        return None
    return PauseFacts(
        target_node_id=pause.node_id,
        paused_at=pause.paused_at,
        reason=pause.reason,
        severity=pause.severity,
        require_human_confirmation=pause.require_human_confirmation,
    )
