"""Roles as groups: created by migrate, given by role_assign, each change in the ledger."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import Client

from ledger import kinds
from ledger.models import LedgerEvent
from organization import roles
from organization.services import genome_bootstrap
from tests import factories

pytestmark = pytest.mark.django_db


def permissions_of(group: str) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in Group.objects.get(name=group).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def test_migrate_leaves_one_group_per_role_holding_exactly_its_permissions() -> None:
    for role in roles.ROLES.values():
        assert permissions_of(role.name) == set(role.permissions)
    assert permissions_of("viewer") == {roles.VIEW}
    assert roles.SUBMIT_DIRECTIVE not in permissions_of("approver")
    assert roles.GRANT_BUDGET in permissions_of("admin")
    assert roles.GRANT_BUDGET not in permissions_of("operator")


def test_role_assign_gives_exactly_the_roles_named_and_records_who_did_it(capsys) -> None:
    factories.UserFactory.create(username="dana")

    call_command("role_assign", "dana", "operator", "approver")

    dana = User.objects.get(username="dana")
    assert sorted(dana.groups.values_list("name", flat=True)) == ["approver", "operator"]
    assert dana.is_staff  # approvers decide trials in the Django admin
    assert dana.has_perm(roles.SUBMIT_DIRECTIVE) and dana.has_perm(roles.APPROVE_TRIAL)
    assert not dana.has_perm(roles.GRANT_BUDGET)
    event = LedgerEvent.objects.get(kind=kinds.USER_ROLES_CHANGED)
    assert event.actor.startswith("cli:")
    assert event.payload == {
        "username": "dana",
        "roles": ["approver", "operator"],
        "previous_roles": [],
        "is_staff": True,
    }

    call_command("role_assign", "dana", "viewer")

    dana = User.objects.get(username="dana")
    assert list(dana.groups.values_list("name", flat=True)) == ["viewer"]
    assert not dana.is_staff
    assert "dana: viewer (was: approver, operator)" in capsys.readouterr().out


def test_role_assign_refuses_an_unknown_role_or_user_and_changes_nothing() -> None:
    factories.UserFactory.create(username="dana")

    with pytest.raises(CommandError, match="unknown role 'root'; the roles are viewer"):
        call_command("role_assign", "dana", "operator", "root")
    with pytest.raises(CommandError, match="no user is called 'nobody'"):
        call_command("role_assign", "nobody", "viewer")

    assert not User.objects.get(username="dana").groups.exists()
    assert not LedgerEvent.objects.filter(kind=kinds.USER_ROLES_CHANGED).exists()


def test_role_assign_none_takes_every_role_away_and_lists_who_has_one(capsys) -> None:
    factories.with_roles("erin", "admin")
    factories.with_roles("fay", "viewer")

    call_command("role_assign", "erin", "--none")
    call_command("role_assign")

    erin = User.objects.get(username="erin")
    assert not erin.groups.exists() and not erin.is_staff
    out = capsys.readouterr().out
    assert "fay\tviewer" in out and "erin\t" not in out


def test_the_operator_account_make_run_creates_is_an_operator_not_a_superuser(
    settings, tmp_path, capsys
) -> None:
    settings.VAR_DIR = tmp_path

    call_command("operator_create")

    operator = User.objects.get(username="operator")
    assert not operator.is_superuser
    assert list(operator.groups.values_list("name", flat=True)) == ["operator"]
    assert operator.has_perm(roles.SUBMIT_DIRECTIVE) and operator.has_perm(roles.RAISE_SIGNAL)
    assert not operator.has_perm(roles.APPROVE_TRIAL)
    assert "role_assign operator operator approver" in capsys.readouterr().out


def test_a_viewer_logs_in_on_our_login_page_though_the_admin_would_refuse_them() -> None:
    genome_bootstrap(template="nested", actor="test")
    factories.viewer()
    client = Client()

    response = client.post(
        "/login/?next=/", {"username": "viewer", "password": factories.PASSWORD, "next": "/"}
    )

    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.get("/admin/").status_code == 302  # not staff: the admin stays shut


def test_a_user_without_a_role_gets_a_403_page_saying_which_permission_and_role() -> None:
    client = Client()
    client.force_login(factories.outsider())

    page = client.get("/")
    swap = client.post("/alarms/nodes/root/pause/", headers={"HX-Request": "true"})

    assert page.status_code == 403
    text = page.content.decode()
    assert "organization.view_organization" in text and "role_assign outsider viewer" in text
    assert "<html" in text
    # An htmx request gets only the message, put at the top of the page's content.
    assert swap.status_code == 403
    assert swap["HX-Retarget"] == "#content" and swap["HX-Reswap"] == "afterbegin"
    assert "<html" not in swap.content.decode()
    assert "workers.raise_signal" in swap.content.decode()
