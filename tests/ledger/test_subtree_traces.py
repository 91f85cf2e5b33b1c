from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace, TaskTraceScope
from ledger.selectors import subtree_task_traces
from ledger.services import task_trace_record
from tests.ledger.factories import TaskTraceFactory

pytestmark = pytest.mark.django_db


def record(**fields: object) -> TaskTrace:
    return task_trace_record(trace=TaskTraceFactory.build(**fields))


def test_recording_a_trace_stores_its_scopes_and_a_trace_written_event() -> None:
    trace = record()

    scopes = list(
        TaskTraceScope.objects.filter(trace=trace)
        .order_by("distance")
        .values_list("node_id", "distance")
    )
    assert scopes == [("backend-coder", 0), ("backend-system", 1), ("root-codebase-system", 2)]
    event = LedgerEvent.objects.get(kind=kinds.TRACE_WRITTEN)
    assert event.task_id == trace.task_id
    assert event.responsible_ancestor_ids == ["backend-system", "root-codebase-system"]
    assert event.payload["trace_id"] == trace.id


def test_a_node_sees_its_own_and_its_descendants_traces_but_not_a_siblings() -> None:
    coder = record()
    sibling = record(
        assigned_node_id="frontend-coder",
        responsible_ancestor_ids=["frontend-system", "root-codebase-system"],
    )

    assert subtree_task_traces(node_id="backend-system") == [coder]
    assert subtree_task_traces(node_id="backend-coder") == [coder]
    assert set(subtree_task_traces(node_id="root-codebase-system")) == {coder, sibling}
    assert subtree_task_traces(node_id="frontend-system") == [sibling]


def test_it_filters_before_limiting_so_old_subtree_traces_are_not_missed() -> None:
    old = timezone.now() - timedelta(days=2)
    mine = [record(started_at=old + timedelta(minutes=i)) for i in range(3)]
    for _ in range(120):  # newer traces elsewhere would crowd out a limit-first query
        record(
            assigned_node_id="frontend-coder",
            responsible_ancestor_ids=["frontend-system", "root-codebase-system"],
        )

    found = subtree_task_traces(node_id="backend-system", limit=100)

    assert found == list(reversed(mine))


def test_it_keeps_the_newest_within_the_limit_and_window() -> None:
    start = timezone.now() - timedelta(hours=5)
    traces = [record(started_at=start + timedelta(hours=i)) for i in range(5)]

    assert subtree_task_traces(node_id="backend-system", limit=2) == [traces[4], traces[3]]
    since = start + timedelta(hours=2)
    assert subtree_task_traces(node_id="backend-system", since=since) == [
        traces[4],
        traces[3],
        traces[2],
    ]


def test_it_rejects_a_limit_below_one() -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        subtree_task_traces(node_id="backend-system", limit=0)
