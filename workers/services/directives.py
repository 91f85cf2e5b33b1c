"""Directive intake: store it, record it, send it to the root (settling is the root's:
``workers.services.controller.results``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError

from ledger import kinds
from ledger.chain import canonical_json
from ledger.services import EventDraft, ledger_batch, ledger_record
from organization.genome import VsmChannelType
from organization.selectors import champion_genome
from workers.domain.messages import (
    AcceptanceCriterion,
    MessageEnvelope,
    PayloadType,
    RiskClass,
    from_json,
    to_json,
)
from workers.domain.messages import (
    Directive as DirectiveMessage,
)
from workers.errors import IdempotencyConflict, NoOrganization
from workers.models import Directive
from workers.services.transport import envelope_publish


@dataclass(frozen=True)
class Submission:
    directive: Directive
    created: bool


def request_fingerprint(data: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(data).encode()).hexdigest()


def directive_message(directive: Directive) -> DirectiveMessage:
    return DirectiveMessage(
        id=directive.id,
        origin=directive.origin,
        title=directive.title,
        body=directive.body,
        constraints=list(directive.constraints),
        desired_state=directive.desired_state,
        risk=RiskClass(directive.risk),
        metadata=dict(directive.metadata),
        acceptance=[from_json(AcceptanceCriterion, item) for item in directive.acceptance],
    )


def directive_submit(
    *,
    title: str,
    body: str = "",
    constraints: list[str] | None = None,
    desired_state: str | None = None,
    risk: str = "Medium",
    metadata: dict[str, str] | None = None,
    acceptance: list[dict[str, Any]] | None = None,
    planned_tasks: list[dict[str, Any]] | None = None,
    origin: str = "api",
    user: User | AnonymousUser | None = None,
    idempotency_key: str | None = None,
) -> Submission:
    """Store a directive, record ``directive_accepted`` and send it to the root controller.

    With an ``idempotency_key`` a repeated submission by the same user returns the
    first directive (``created=False``) and sends nothing; the same key with a
    different request raises IdempotencyConflict. Raises NoOrganization when
    there is no organization to run it. Input shape is validated by the caller
    (the API serializer or the command).
    """
    fields = {
        "title": title,
        "body": body,
        "constraints": constraints or [],
        "desired_state": desired_state,
        "risk": risk,
        "metadata": metadata or {},
        "acceptance": acceptance or [],
        "planned_tasks": planned_tasks or [],
    }
    fingerprint = request_fingerprint(fields)
    owner = user if isinstance(user, User) else None
    if idempotency_key:
        existing = _existing(owner, idempotency_key, fingerprint)
        if existing is not None:
            return Submission(existing, created=False)
    genome = champion_genome()
    if genome is None:
        raise NoOrganization()
    try:
        with ledger_batch():
            directive = Directive.objects.create(
                **fields,
                origin=origin,
                root_node_id=genome.root_node_id,
                genome_id=genome.id,
                created_by=owner,
                idempotency_key=idempotency_key or None,
                request_fingerprint=fingerprint,
            )
            message = directive_message(directive)
            envelope = MessageEnvelope(
                channel_type=VsmChannelType.OPERATION_TO_ENVIRONMENT,
                source_node_id=None,
                target_node_id=genome.root_node_id,
                correlation_id=directive.id,
                payload_type=PayloadType.DIRECTIVE,
                # The operator's plan rides along, so the root needs no read of the row.
                payload={**to_json(message), "planned_tasks": directive.planned_tasks},
            )
            ledger_record(
                EventDraft(
                    kind=kinds.DIRECTIVE_ACCEPTED,
                    actor=_actor(owner, origin),
                    payload=to_json(message),
                    node_id=genome.root_node_id,
                    directive_id=directive.id,
                    correlation_id=directive.id,
                    genome_id=genome.id,
                )
            )
            envelope_publish(envelope=envelope, genome=genome, directive_id=directive.id)
    except IntegrityError:
        # A concurrent retry with the same key won the race: answer with its directive.
        existing = _existing(owner, idempotency_key or "", fingerprint)
        if existing is None:
            raise
        return Submission(existing, created=False)
    return Submission(directive, created=True)


def _existing(owner: User | None, key: str, fingerprint: str) -> Directive | None:
    existing = Directive.objects.filter(created_by=owner, idempotency_key=key).first()
    if existing is not None and existing.request_fingerprint != fingerprint:
        raise IdempotencyConflict()
    return existing


def _actor(owner: User | None, origin: str) -> str:
    if owner is not None:
        return f"user:{owner.get_username()}"
    return origin
