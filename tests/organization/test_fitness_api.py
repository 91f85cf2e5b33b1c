"""GET /api/nodes/{id}/fitness/: direct and attributed fitness from the recorded traces."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from ledger.services import task_trace_record
from organization.services import genome_bootstrap
from tests import factories
from tests.ledger.factories import TaskTraceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    genome_bootstrap(template="nested", actor="operator:test")
    client = APIClient()
    client.force_authenticate(factories.admin())
    return client


def test_a_leaf_gets_direct_credit_and_its_ancestors_decayed_credit(api: APIClient) -> None:
    # Test vector (docs/rules/fitness.md): a leaf trace of 10 with a parent → leaf 10, parent 10.
    task_trace_record(trace=TaskTraceFactory.build(outcome_score=10.0, merged=None))

    leaf = api.get("/api/nodes/backend-coder/fitness/").json()
    parent = api.get("/api/nodes/backend-system/fitness/").json()
    root = api.get("/api/nodes/root-codebase-system/fitness/").json()

    assert leaf["direct"]["task_count"] == 1
    assert leaf["direct"]["raw_score"] == pytest.approx(10.0)
    assert leaf["attributed"]["final_score"] == pytest.approx(10.0)
    assert parent["direct"]["task_count"] == 0
    assert parent["attributed"]["descendant_score"] == pytest.approx(10.0)
    assert root["attributed"]["descendant_score"] == pytest.approx(5.0)


def test_the_window_limits_which_traces_count(api: APIClient) -> None:
    now = timezone.now()
    task_trace_record(
        trace=TaskTraceFactory.build(started_at=now - timedelta(days=3), outcome_score=1.0)
    )
    task_trace_record(
        trace=TaskTraceFactory.build(started_at=now - timedelta(hours=1), outcome_score=1.0)
    )

    recent = api.get(
        "/api/nodes/backend-coder/fitness/", {"since": (now - timedelta(days=1)).isoformat()}
    ).json()

    assert recent["direct"]["task_count"] == 1


def test_bad_windows_and_unknown_nodes_are_refused(api: APIClient) -> None:
    assert api.get("/api/nodes/ghost/fitness/").status_code == 404
    assert api.get("/api/nodes/backend-coder/fitness/", {"since": "yesterday"}).status_code == 400
    later, earlier = timezone.now().isoformat(), (timezone.now() - timedelta(days=1)).isoformat()
    response = api.get("/api/nodes/backend-coder/fitness/", {"since": later, "until": earlier})
    assert response.status_code == 400
    assert "until" in response.json()
