"""The registry of acceptance verifiers: admins write the commands, directives name them."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from ledger import kinds
from ledger.models import LedgerEvent
from organization.services import genome_bootstrap
from tests import factories
from workers.models import AcceptanceVerifier, Directive

pytestmark = pytest.mark.django_db

ADD = "/admin/workers/acceptanceverifier/add/"


def test_an_admin_registers_a_verifier_in_the_admin_and_the_ledger_names_them() -> None:
    client = Client()
    client.force_login(factories.admin())

    response = client.post(ADD, {"name": "tests-pass", "command": "pytest -q", "description": ""})

    assert response.status_code == 302
    assert AcceptanceVerifier.objects.get(name="tests-pass").command == "pytest -q"
    event = LedgerEvent.objects.get(kind=kinds.ACCEPTANCE_VERIFIER_REGISTERED)
    assert event.actor == "user:admin"
    assert event.payload["command"] == "pytest -q"


def test_an_approver_in_the_admin_may_not_write_verifier_commands() -> None:
    client = Client()
    client.force_login(factories.approver())

    assert client.get(ADD).status_code == 403
    assert client.post(ADD, {"name": "x", "command": "id"}).status_code == 403
    assert not AcceptanceVerifier.objects.exists()


def test_the_command_line_registers_lists_and_removes_verifiers(capsys) -> None:
    call_command("verifier_register", "lint", "make lint", "--description", "ruff")
    call_command("verifier_register")
    call_command("verifier_register", "lint", "--remove")

    out = capsys.readouterr().out
    assert "registered acceptance verifier lint: make lint" in out
    assert "lint\tmake lint" in out
    assert not AcceptanceVerifier.objects.exists()
    assert [e.kind for e in LedgerEvent.objects.order_by("seq")] == [
        kinds.ACCEPTANCE_VERIFIER_REGISTERED,
        kinds.ACCEPTANCE_VERIFIER_REMOVED,
    ]
    with pytest.raises(CommandError, match="no acceptance verifier is called 'lint'"):
        call_command("verifier_register", "lint", "--remove")
    with pytest.raises(CommandError, match="name: Use letters"):
        call_command("verifier_register", "no spaces", "true")


def test_a_directive_from_the_command_line_names_a_verifier_too() -> None:
    genome_bootstrap(template="single", actor="test")

    with pytest.raises(CommandError, match="No acceptance verifier is registered as 'make test'"):
        call_command("directive_submit", "Do it", "--accept", "tests=make test")
    assert not Directive.objects.exists()

    call_command("verifier_register", "unit", "make test")
    call_command("directive_submit", "Do it", "--accept", "tests=unit")
    (check,) = Directive.objects.get().acceptance
    assert (check["verifier"], check["verifier_name"]) == ("make test", "unit")
