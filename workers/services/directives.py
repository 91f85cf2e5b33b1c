"""Directive intake: store it, record it, send it to the root (settling is the root's:
``workers.services.controller.results``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError
from django.db.models import Q

from ledger import kinds
from ledger.chain import canonical_json
from ledger.services import EventDraft, ledger_batch, ledger_batch_insert, ledger_record
from organization.genome import VsmChannelType
from organization.models import Node
from organization.selectors import champion_genome
from workers.domain import input_rules
from workers.domain.directive_rules import directive_errors
from workers.domain.messages import (
    AcceptanceCriterion,
    DirectiveMessage,
    MessageEnvelope,
    PayloadType,
    RiskClass,
    from_json,
    to_json,
)
from workers.errors import IdempotencyConflict, NoOrganization, Rejected
from workers.models import Directive, Task
from workers.services.transport import envelope_publish
from workers.services.verifiers import acceptance_resolve, unregistered_verifiers


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
    there is no organization to run it, and Rejected, naming each field and storing
    nothing, for a directive the rules refuse (an unknown target, a flag that is not
    "true"/"false", duplicate names, a plan with a cycle, an acceptance check naming a
    verifier nobody registered: ``workers.services.verifiers``). JSON types are the edge's
    business (the API serializer); the rules are checked here, for every way in.
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
    _validate(fields)
    fingerprint = request_fingerprint(fields)
    # Names in, commands stored: the directive keeps what its checks will run.
    fields["acceptance"] = acceptance_resolve(acceptance or [])
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
            directive = Directive(
                **fields,
                origin=origin,
                root_node_id=genome.root_node_id,
                genome_id=genome.id,
                created_by=owner,
                idempotency_key=idempotency_key or None,
                request_fingerprint=fingerprint,
            )
            # Written with the append (a concurrent same-key retry fails it: IntegrityError).
            ledger_batch_insert(directive)
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


def _validate(fields: dict[str, Any]) -> None:
    """The directive rules (``workers.domain.directive_rules``), for every way in.

    Text is measured against the columns it is stored in (the model's ``max_length``) and the
    limits of ``workers.domain.input_rules``, so SQLite refuses what PostgreSQL would.
    """
    errors = directive_errors(
        title=fields["title"],
        metadata=fields["metadata"],
        acceptance=fields["acceptance"],
        planned_tasks=fields["planned_tasks"],
        node_exists=lambda name: Node.objects.filter(Q(id=name) | Q(name=name)).exists(),
        texts=_texts(fields),
    )
    unregistered = unregistered_verifiers(fields["acceptance"])
    if unregistered:
        errors.setdefault("acceptance", []).extend(unregistered)
    if errors:
        raise Rejected(errors)


def _texts(fields: dict[str, Any]) -> dict[str, list[tuple[str, int | None]]]:
    """Each text field's values with the most characters each may have."""
    acceptance, planned = fields["acceptance"], fields["planned_tasks"]
    task_title = Task._meta.get_field("title").max_length
    return {
        "title": [(fields["title"], Directive._meta.get_field("title").max_length)],
        "body": [(fields["body"], input_rules.MAX_BODY_LENGTH)],
        "desired_state": [(fields["desired_state"] or "", input_rules.MAX_BODY_LENGTH)],
        "constraints": [(text, input_rules.MAX_ITEM_LENGTH) for text in fields["constraints"]],
        "acceptance": [
            *((str(item["name"]), input_rules.MAX_NAME_LENGTH) for item in acceptance),
            *(
                (str(text), input_rules.MAX_ITEM_LENGTH)
                for item in acceptance
                for text in (item.get("description"), item.get("verifier"))
                if text is not None
            ),
        ],
        "tasks": [
            *((str(task["title"]), task_title) for task in planned),
            *((str(task.get("goal", "")), input_rules.MAX_GOAL_LENGTH) for task in planned),
        ],
    }


def _existing(owner: User | None, key: str, fingerprint: str) -> Directive | None:
    existing = Directive.objects.filter(created_by=owner, idempotency_key=key).first()
    if existing is not None and existing.request_fingerprint != fingerprint:
        raise IdempotencyConflict()
    return existing


def _actor(owner: User | None, origin: str) -> str:
    if owner is not None:
        return f"user:{owner.get_username()}"
    return origin
