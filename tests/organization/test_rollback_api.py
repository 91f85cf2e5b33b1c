"""Rolling the champion genome back to an earlier version: POST /api/genome/rollback/ and the
admin's "Roll back to this version"."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ledger import kinds
from ledger.models import LedgerEvent
from organization.models import GenomeVersion
from organization.selectors import champion_version
from organization.services import genome_apply_patch, genome_bootstrap, genome_candidate_create
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/api/genome/rollback/"
RIPGREP = {"kind": "add_tool", "node_id": "backend-coder", "tool": {"name": "ripgrep"}}


@pytest.fixture
def versions() -> tuple[GenomeVersion, GenomeVersion]:
    """The bootstrap version, and the champion after one patch (ripgrep on the coder)."""
    first, _ = genome_bootstrap(template="nested", actor="operator:test")
    return first, genome_apply_patch(patch=RIPGREP, actor="operator:test")


def api_of(user: User | None) -> APIClient:
    api = APIClient()
    if user is not None:
        api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


def genome_operator() -> User:
    """Staff with the rollback permission and no other power."""
    user = factories.UserFactory.create(username="genome-operator", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["rollback_genome", "view_genomeversion"])
    )
    return user


def coder_tools() -> list[str]:
    champion = champion_version()
    assert champion is not None
    coder = next(
        node
        for node_id, node in GenomeVersion.objects.get(pk=champion.pk).genome["nodes"].items()
        if node_id == "backend-coder"
    )
    return [tool["name"] for tool in coder["tools"]]


def test_an_operator_rolls_back_to_an_earlier_version(
    versions: tuple[GenomeVersion, GenomeVersion],
) -> None:
    first, patched = versions
    assert "ripgrep" in coder_tools()

    response = api_of(genome_operator()).post(
        URL, {"to_version_id": first.id, "reason": "ripgrep broke the sandbox"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    champion = champion_version()
    assert champion is not None and body["id"] == champion.id
    assert body["id"] not in (first.id, patched.id)  # a new version; history only grows
    assert body["parent_id"] == patched.id
    assert body["patch"] == {"kind": "rollback", "to_version_id": first.id}
    assert body["actor"] == "user:genome-operator"
    assert body["reason"] == "ripgrep broke the sandbox"
    assert "ripgrep" not in coder_tools()
    event = LedgerEvent.objects.get(kind=kinds.GENOME_ROLLED_BACK)
    assert event.payload["to_version_id"] == first.id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to_version_id": "ghost", "reason": "why"}, "to_version_id"),
        ({"reason": "why"}, "to_version_id"),
        ({"to_version_id": "x"}, "reason"),
        ({"to_version_id": 7, "reason": "why"}, "to_version_id"),
        ({"to_version_id": "x", "reason": ""}, "reason"),
        ({"to_version_id": "x", "reason": "why", "force": True}, "force"),
    ],
)
def test_bad_input_is_a_400_and_the_champion_stays(
    versions: tuple[GenomeVersion, GenomeVersion], body: dict[str, Any], field: str
) -> None:
    _, patched = versions

    response = api_of(factories.admin()).post(URL, body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    champion = champion_version()
    assert champion is not None and champion.id == patched.id


def test_a_candidate_version_cannot_be_rolled_back_to(
    versions: tuple[GenomeVersion, GenomeVersion],
) -> None:
    _, patched = versions
    candidate = genome_candidate_create(
        base_version_id=patched.id,
        patch={"kind": "remove_tool", "node_id": "backend-coder", "tool_name": "ripgrep"},
        suggestion_id="suggestion-1",
        actor="system:trials",
    )

    response = api_of(factories.admin()).post(
        URL, {"to_version_id": candidate.id, "reason": "try it"}, format="json"
    )

    assert response.status_code == 400
    assert "candidate" in response.json()["to_version_id"][0]
    assert not LedgerEvent.objects.filter(kind=kinds.GENOME_ROLLED_BACK).exists()


def test_a_viewer_gets_a_403_and_an_outsider_a_401(
    versions: tuple[GenomeVersion, GenomeVersion],
) -> None:
    first, _ = versions
    body = {"to_version_id": first.id, "reason": "why"}

    assert api_of(factories.viewer()).post(URL, body, format="json").status_code == 403
    assert api_of(None).post(URL, body, format="json").status_code == 401
    assert not LedgerEvent.objects.filter(kind=kinds.GENOME_ROLLED_BACK).exists()


# -- the admin --------------------------------------------------------------------------------


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_offers_the_rollback_only_with_the_permission(
    versions: tuple[GenomeVersion, GenomeVersion],
) -> None:
    first, _ = versions
    page = reverse("admin:organization_genomeversion_change", args=[first.id])
    form = reverse("admin:organization_genomeversion_rollback", args=[first.id])

    assert form in logged_in(genome_operator()).get(page).content.decode()
    viewer = logged_in(factories.staff_viewer())
    assert form not in viewer.get(page).content.decode()
    assert viewer.get(form).status_code == 403
    assert viewer.post(form, {"reason": "why"}).status_code == 403
    assert not LedgerEvent.objects.filter(kind=kinds.GENOME_ROLLED_BACK).exists()


def test_the_admin_rolls_back_with_a_reason(versions: tuple[GenomeVersion, GenomeVersion]) -> None:
    first, patched = versions
    operator = logged_in(genome_operator())
    form = reverse("admin:organization_genomeversion_rollback", args=[first.id])

    asked = operator.get(form)
    blank = operator.post(form, {"reason": ""})
    done = operator.post(form, {"reason": "back to the bootstrap"})

    assert asked.status_code == 200 and 'name="reason"' in asked.content.decode()
    assert blank.status_code == 400 and "needs a reason" in blank.content.decode()
    champion = champion_version()
    assert champion is not None and champion.id not in (first.id, patched.id)
    assert champion.reason == "back to the bootstrap"
    assert done.status_code == 302
    assert done["Location"] == reverse(
        "admin:organization_genomeversion_change", args=[champion.id]
    )
    assert "ripgrep" not in coder_tools()


def test_the_admin_shows_why_a_candidate_cannot_be_rolled_back_to(
    versions: tuple[GenomeVersion, GenomeVersion],
) -> None:
    _, patched = versions
    candidate = genome_candidate_create(
        base_version_id=patched.id,
        patch=RIPGREP | {"tool": {"name": "fd"}},
        suggestion_id="suggestion-2",
        actor="system:trials",
    )
    form = reverse("admin:organization_genomeversion_rollback", args=[candidate.id])

    response = logged_in(genome_operator()).post(form, {"reason": "try"})

    assert response.status_code == 400
    assert "candidate" in response.content.decode()
    champion = champion_version()
    assert champion is not None and champion.id == patched.id
