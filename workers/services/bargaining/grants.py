"""Asking for a grant, deciding it under the epoch row's lock, and recording what was used."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ledger import kinds
from ledger.models import LedgerEvent
from ledger.services import EventDraft, ledger_append_many
from organization.genome import OrganizationalGenome
from organization.selectors import champion_version, genome_of
from workers.domain.bargaining import (
    COORDINATION_EVENT_KIND,
    ENVIRONMENT_EVENT_KINDS,
    Budgets,
    EpochUsage,
    EventRecord,
    ResourceAllocationDecision,
    ResourceBargain,
    SubtreePause,
    decide,
    decision_event_payload,
    decision_metadata,
    edge_budgets,
    epoch_key,
    summarise_coordination_pressure,
    summarise_environment_pressure,
)
from workers.domain.messages import TaskPacket
from workers.domain.prompt import build_model_request
from workers.models import ResourceEpoch, ResourceGrant
from workers.providers.base import rough_token_estimate
from workers.services.algedonic import paused
from workers.services.transport import ancestors_of

# The controller's last 100 events of the pressure kinds (docs/rules/bargaining.md).
PRESSURE_WINDOW = 100


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


def grant_request(
    *,
    controller_node_id: str,
    bargain: ResourceBargain,
    envelope_id: str | None = None,
    directive_id: str | None = None,
    correlation_id: str | None = None,
    now: datetime | None = None,
) -> ResourceGrant:
    """Decide ``bargain`` at ``controller_node_id`` and record the decision, in one transaction.

    Invariant: see the module docstring (the epoch row is locked for the whole decision).
    A redelivered envelope gets the grant its first delivery got instead of a second one.
    Never raises for a bad bargain (an unknown node, a non-child): that is a Denied decision.
    Raises ``RuntimeError`` only when there is no organization at all.
    """
    version = champion_version()
    if version is None:
        raise RuntimeError("there is no organization yet")
    genome = genome_of(version)
    moment = now or timezone.now()
    with transaction.atomic():
        epoch = lock_epoch(current_epoch_key(moment), controller_node_id, bargain.requested_by)
        if envelope_id is not None:
            earlier = (
                ResourceGrant.objects.filter(envelope_id=envelope_id)
                .exclude(status=ResourceGrant.Status.DENIED)
                .first()
            )
            if earlier is not None:
                return earlier
        decision, metadata = _decide_locked(genome, epoch, bargain, moment)
        if decision.uses_message_budget:
            epoch.allocation_count += 1
            epoch.allocated_tokens += decision.approved_tokens or 0
            epoch.save(update_fields=["allocation_count", "allocated_tokens", "updated_at"])
        payload = decision_event_payload(decision)
        grant = ResourceGrant.objects.create(
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
        ledger_append_many(
            drafts=[
                EventDraft(
                    kind=kinds.RESOURCE_ALLOCATION_DECISION,
                    actor=f"node:{controller_node_id}",
                    # The ledger has no metadata column: the decision metadata rides in the payload.
                    payload={**payload, "grant_id": grant.id, "metadata": metadata},
                    node_id=controller_node_id,
                    responsible_ancestor_ids=ancestors_of(genome, controller_node_id),
                    task_id=decision.task_id,
                    directive_id=directive_id,
                    correlation_id=correlation_id,
                    genome_id=version.id,
                )
            ]
        )
    return grant


def _decide_locked(
    genome: OrganizationalGenome,
    epoch: ResourceEpoch,
    bargain: ResourceBargain,
    moment: datetime,
) -> tuple[ResourceAllocationDecision, dict[str, str]]:
    """The pure decision on what the locked epoch row, the ledger and the pauses say now."""
    controller_id, requester_id = epoch.controller_node_id, epoch.requester_node_id
    usage = EpochUsage(
        allocation_count=epoch.allocation_count, allocated_tokens=epoch.allocated_tokens
    )
    budgets = epoch_budgets(genome, epoch)
    pause = _pause_of(genome, requester_id)
    coordination = summarise_coordination_pressure(
        _recent_events(controller_id, {COORDINATION_EVENT_KIND}), requester_id
    )
    environment = summarise_environment_pressure(
        _recent_events(controller_id, ENVIRONMENT_EVENT_KINDS)
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


def grant_usage(*, grant_id: str, used_tokens: int) -> ResourceGrant:
    """Record the tokens a leaf used under a grant; the first report wins (redeliveries)."""
    with transaction.atomic():
        # The epoch row first, as grant_request locks it: one lock order, no deadlock.
        epoch_id = ResourceGrant.objects.values_list("epoch_id", flat=True).get(id=grant_id)
        ResourceEpoch.objects.select_for_update().filter(id=epoch_id).first()
        grant = ResourceGrant.objects.select_for_update().get(id=grant_id)
        if grant.used_tokens is not None:
            return grant
        grant.used_tokens, grant.used_at = max(used_tokens, 0), timezone.now()
        grant.save(update_fields=["used_tokens", "used_at"])
        ResourceEpoch.objects.filter(id=epoch_id).update(
            used_tokens=F("used_tokens") + grant.used_tokens, updated_at=timezone.now()
        )
    return grant


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
    # ON CONFLICT DO NOTHING: two first grants of an epoch race to create the row, and the
    # loser must not abort its transaction on the unique constraint.
    ResourceEpoch.objects.bulk_create([ResourceEpoch(**ids)], ignore_conflicts=True)
    return ResourceEpoch.objects.select_for_update().get(**ids)


def _pause_of(genome: OrganizationalGenome, node_id: str) -> SubtreePause | None:
    pause = paused(genome, node_id)
    if pause is None:
        return None
    return SubtreePause(
        target_node_id=pause.node_id,
        paused_at=pause.paused_at,
        reason=pause.reason,
        severity=pause.severity,
        require_human_confirmation=pause.require_human_confirmation,
    )


def _recent_events(node_id: str, event_kinds: Iterable[str]) -> list[EventRecord]:
    """The node's last events of these kinds, oldest first, as the pure summaries read them."""
    rows = (
        LedgerEvent.objects.filter(node_id=node_id, kind__in=list(event_kinds))
        .order_by("-seq")
        .values("kind", "payload")[:PRESSURE_WINDOW]
    )
    records: list[EventRecord] = []
    for row in reversed(list(rows)):
        payload = row["payload"] if isinstance(row["payload"], dict) else {}
        metadata = payload.get("metadata")
        records.append(
            {
                "kind": row["kind"],
                "payload": payload,
                "metadata": metadata if isinstance(metadata, dict) else {},
            }
        )
    return records
