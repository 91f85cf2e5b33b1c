"""The registry of acceptance verifiers: the only commands a directive's checks may run.

A verifier command runs on a worker (inside the agent sandbox), so writing one is an admin's
power (docs/operations.md, "Roles"); a directive only names one. ``acceptance_resolve`` turns
the names into the commands at submission, and the directive keeps both, so a later edit of
the registry never changes the checks of work already submitted, and the ledger shows what
each check ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from ledger import kinds
from ledger.services import EventDraft, ledger_record
from workers.domain import input_rules
from workers.errors import Rejected
from workers.models import AcceptanceVerifier

REGISTRY_HINT = (
    "an admin registers verifiers in the admin (Workers, Acceptance verifiers) "
    "or with 'python manage.py verifier_register NAME COMMAND'"
)


def verifier_register(
    *, name: str, command: str, description: str = "", actor: str
) -> AcceptanceVerifier:
    """Create or replace the verifier ``name``; one ledger event with the actor and command.

    Raises Rejected for a name that is not a slug, or an empty or too long command.
    """
    errors: dict[str, list[str]] = {}
    field = AcceptanceVerifier._meta.get_field("name")
    if not name or len(name) > (field.max_length or 0) or not _is_slug(name):
        errors["name"] = [
            f"Use letters, digits, '-' and '_' only, at most {field.max_length} characters."
        ]
    if not command.strip():
        errors["command"] = ["A verifier needs a command."]
    elif len(command) > input_rules.MAX_ITEM_LENGTH:
        errors["command"] = [f"At most {input_rules.MAX_ITEM_LENGTH} characters."]
    if len(description) > 500:
        errors["description"] = ["At most 500 characters."]
    if errors:
        raise Rejected(errors)
    with transaction.atomic():
        verifier, created = AcceptanceVerifier.objects.update_or_create(
            name=name,
            defaults={"command": command, "description": description, "created_by": actor},
        )
        ledger_record(
            EventDraft(
                kind=kinds.ACCEPTANCE_VERIFIER_REGISTERED,
                actor=actor,
                payload={
                    "name": name,
                    "command": command,
                    "description": description,
                    "replaced": not created,
                },
            )
        )
    return verifier


def verifier_remove(*, name: str, actor: str) -> bool:
    """Remove ``name`` (False if there was none); directives already submitted keep theirs."""
    with transaction.atomic():
        deleted, _ = AcceptanceVerifier.objects.filter(name=name).delete()
        if deleted:
            ledger_record(
                EventDraft(
                    kind=kinds.ACCEPTANCE_VERIFIER_REMOVED, actor=actor, payload={"name": name}
                )
            )
    return bool(deleted)


def unregistered_verifiers(acceptance: Sequence[Mapping[str, Any]]) -> list[str]:
    """A message for each acceptance item naming a verifier the registry lacks."""
    named = {str(item["verifier"]) for item in acceptance if item.get("verifier") is not None}
    if not named:
        return []  # most directives name none: no query to build
    known = set(AcceptanceVerifier.objects.filter(name__in=named).values_list("name", flat=True))
    missing = sorted(named - known)
    if not missing:
        return []
    return [
        f"No acceptance verifier is registered as {', '.join(map(repr, missing))}: a "
        f"directive names verifiers, it cannot bring its own commands; {REGISTRY_HINT}."
    ]


def acceptance_resolve(acceptance: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The items as stored: ``verifier`` the command to run, ``verifier_name`` its name.

    Call after ``unregistered_verifiers`` found nothing missing (in the same transaction, so
    a verifier removed in between cannot slip through: it raises Rejected then).
    """
    named = {str(item["verifier"]) for item in acceptance if item.get("verifier") is not None}
    commands = (
        dict(AcceptanceVerifier.objects.filter(name__in=named).values_list("name", "command"))
        if named
        else {}
    )
    resolved = []
    for item in acceptance:
        name = item.get("verifier")
        stored: dict[str, Any] = {
            "name": item["name"],
            "description": item.get("description", ""),
            "verifier": None,
            "verifier_name": None,
        }
        if name is not None:
            if name not in commands:
                raise Rejected({"acceptance": unregistered_verifiers([item])})
            stored["verifier"], stored["verifier_name"] = commands[name], name
        resolved.append(stored)
    return resolved


def _is_slug(text: str) -> bool:
    return all(
        character.isascii() and (character.isalnum() or character in "-_") for character in text
    )
