"""The admin shows the genome and the ledger, and lets nobody change them."""

from __future__ import annotations

import pytest
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from ledger.models import LedgerEvent, TaskTrace
from ledger.services import task_trace_record
from organization.models import GenomeVersion, Node
from organization.services import genome_apply_patch, genome_bootstrap
from tests import factories
from tests.ledger.factories import TaskTraceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def organization() -> GenomeVersion:
    genome_bootstrap(template="nested", actor="operator:test")
    return genome_apply_patch(
        patch={"kind": "add_tool", "node_id": "backend-coder", "tool": {"name": "ripgrep"}},
        actor="operator:test",
    )


@pytest.fixture
def operator_client() -> Client:
    client = Client()
    client.force_login(factories.admin())
    return client


def test_the_operator_sees_a_version_with_its_patch_and_a_diff_against_its_parent(
    operator_client: Client, organization: GenomeVersion
) -> None:
    page = operator_client.get(
        reverse("admin:organization_genomeversion_change", args=[organization.id])
    )

    assert page.status_code == 200
    html = page.content.decode()
    assert organization.content_hash in html
    assert 'class="genome-diff"' in html
    assert "+" in html and "ripgrep" in html
    assert "Save" not in html  # read-only: no save buttons


def test_the_node_list_filters_by_kind_and_subtree(
    operator_client: Client, organization: GenomeVersion
) -> None:
    url = reverse("admin:organization_node_changelist")

    def listed(query: dict[str, str]) -> list[str]:
        page = operator_client.get(url, query)
        assert page.status_code == 200
        return [node.id for node in page.context["cl"].result_list]

    assert listed({"kind__exact": "leaf"}) == ["backend-coder"]
    assert listed({"kind__exact": "metasystem"}) == ["root-codebase-system", "backend-system"]
    assert listed({"subtree": "backend-system"}) == ["backend-system", "backend-coder"]
    assert listed({"q": "backend-system"}) == ["backend-system", "backend-coder"]


@pytest.mark.parametrize(
    "model", [LedgerEvent, TaskTrace, GenomeVersion, Node], ids=lambda model: model.__name__
)
def test_not_even_a_superuser_can_add_change_or_delete(
    operator_client: Client, organization: GenomeVersion, model: type[Model]
) -> None:
    task_trace_record(trace=TaskTraceFactory.build())
    instance = model._default_manager.first()
    assert instance is not None
    opts = model._meta
    pk = instance.pk

    add = operator_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    delete = operator_client.post(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[pk]), {"post": "yes"}
    )
    change = operator_client.post(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk]), {}
    )

    assert add.status_code == 403
    assert delete.status_code == 403
    assert change.status_code == 403
    assert model._default_manager.filter(pk=pk).exists()


def test_ledger_events_are_listed_newest_first_for_a_viewer(organization: GenomeVersion) -> None:
    client = Client()
    client.force_login(factories.staff_viewer())

    page = client.get(reverse("admin:ledger_ledgerevent_changelist"))

    assert page.status_code == 200
    listed = [(event.seq, event.kind) for event in page.context["cl"].result_list]
    assert listed == [(2, "genome_patch_applied"), (1, "genome_bootstrapped")]


def test_an_outsider_is_sent_to_the_login_page(organization: GenomeVersion) -> None:
    client = Client()
    client.force_login(factories.outsider())

    page = client.get(reverse("admin:ledger_ledgerevent_changelist"))

    assert page.status_code == 302
    assert page["Location"].startswith(reverse("admin:login"))
