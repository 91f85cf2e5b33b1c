"""GET /api/nodes/: the champion's nodes in tree order, a page at a time."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from organization.genome import fan_out_organization
from organization.services import genome_bootstrap_from
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.slow]  # thousand-node organizations


@pytest.fixture
def api() -> APIClient:
    genome_bootstrap_from(genome=fan_out_organization(1_050), actor="operator:test", label="big")
    client = APIClient()
    client.force_authenticate(factories.admin())
    return client


def test_a_large_organization_is_listed_a_hundred_nodes_at_a_time(api: APIClient) -> None:
    first = api.get("/api/nodes/").json()

    assert first["count"] == 1_050
    assert len(first["results"]) == 100
    assert first["results"][0]["id"] == "root-codebase-system"
    assert first["previous"] is None
    assert first["next"].endswith("/api/nodes/?page=2")


def test_the_pages_together_list_every_node_once_in_tree_order(api: APIClient) -> None:
    seen: list[dict[str, object]] = []
    for page in range(1, 12):
        body = api.get("/api/nodes/", {"page": page}).json()
        seen += body["results"]
    depths = [node["depth"] for node in seen]

    assert len(seen) == 1_050 == len({node["id"] for node in seen})
    assert body["next"] is None and len(body["results"]) == 50
    assert depths[0] == 0 and all(isinstance(depth, int) for depth in depths)


def test_a_client_may_ask_for_bigger_pages_up_to_five_hundred(api: APIClient) -> None:
    assert len(api.get("/api/nodes/", {"page_size": 300}).json()["results"]) == 300
    assert len(api.get("/api/nodes/", {"page_size": 5_000}).json()["results"]) == 500


def test_a_page_past_the_end_is_not_found(api: APIClient) -> None:
    assert api.get("/api/nodes/", {"page": 12}).status_code == 404
