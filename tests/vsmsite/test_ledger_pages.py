"""/ledger/: filter the events, jump to a seq, follow links, and check the chain from the page."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client

from ledger import kinds
from ledger.immutability import drop_guard
from ledger.models import LedgerEvent, LedgerVerification
from ledger.services import ledger_append
from ledger.verification_runs import verification_execute
from organization.services import genome_bootstrap
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer() -> Client:
    genome_bootstrap(template="nested", actor="operator:test")
    client = Client()
    client.force_login(factories.viewer())
    return client


def seqs(html: str) -> list[int]:
    return [int(seq) for seq in re.findall(r'<tr id="seq-(\d+)"', html)]


def append(kind: str = kinds.ENVIRONMENT_SIGNAL, **fields: str) -> LedgerEvent:
    return ledger_append(kind=kind, payload={"n": 1}, **fields)


def test_it_lists_events_newest_first_and_filters_by_kind_node_and_correlation(viewer):
    signal = append(node_id="backend-coder", correlation_id="conv-1")
    other = append(kind=kinds.AUDIT_STARTED, node_id="backend-system", correlation_id="conv-2")

    everything = seqs(viewer.get("/ledger/").content.decode())
    assert everything[:2] == [other.seq, signal.seq] and everything == sorted(everything)[::-1]
    assert seqs(viewer.get("/ledger/?kind=audit_started").content.decode()) == [other.seq]
    assert seqs(viewer.get("/ledger/?node=backend-coder").content.decode()) == [signal.seq]
    page = viewer.get("/ledger/?correlation=conv-1").content.decode()
    assert seqs(page) == [signal.seq]
    # Each row links to its conversation and its node.
    assert 'href="?correlation=conv-1"' in page and 'href="/nodes/backend-coder/"' in page


def test_it_pages_by_seq_and_jumps_to_a_seq_marking_it(viewer):
    events = [append(correlation_id="many") for _ in range(60)]

    first = viewer.get("/ledger/?correlation=many").content.decode()
    assert seqs(first) == [event.seq for event in events[::-1][:50]]
    older = re.search(r'href="\?before=(\d+)&amp;correlation=many"', first)
    assert older is not None
    rest = seqs(viewer.get(f"/ledger/?before={older.group(1)}&correlation=many").content.decode())
    assert rest == [event.seq for event in events[:10][::-1]]

    target = events[5].seq
    jumped = viewer.get(f"/ledger/?seq={target}").content.decode()
    assert seqs(jumped)[0] == target
    assert (
        f'<tr id="seq-{target}" data-seq="{target}"' in jumped and 'aria-current="true"' in jumped
    )


def test_nonsense_in_the_query_gets_a_page_not_an_error(viewer):
    for query in ("seq=-1", "before=abc", "after=" + "9" * 30, "kind=" + "x" * 5000, "node=a'b"):
        assert viewer.get(f"/ledger/?{query}").status_code == 200, query


def test_a_viewer_may_not_start_a_check_and_an_operator_may(viewer):
    refused = viewer.post("/ledger/checks/")
    operator = Client()
    operator.force_login(factories.operator())

    started = operator.post("/ledger/checks/")

    assert refused.status_code == 403 and "ledger.verify_ledger" in refused.content.decode()
    assert "Verify chain" not in viewer.get("/ledger/").content.decode()
    run = LedgerVerification.objects.get()
    assert started.status_code == 302 and started["Location"] == f"/ledger/checks/{run.id}/"
    assert run.requested_by == "user:operator" and run.state == "queued"


def test_a_check_shows_its_progress_then_its_result(viewer, django_capture_on_commit_callbacks):
    operator = Client()
    operator.force_login(factories.operator())
    sent: list[str] = []
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        operator.post("/ledger/checks/")
    run = LedgerVerification.objects.get()
    queued = viewer.get(f"/ledger/checks/{run.id}/").content.decode()
    assert "Waiting for a worker" in queued and 'hx-trigger="every 1s"' in queued
    assert len(callbacks) == 1  # the task is sent on commit only

    verification_execute(run_id=run.id)

    done = viewer.get(f"/ledger/checks/{run.id}/", headers={"HX-Request": "true"})
    html = done.content.decode()
    assert "<html" not in html  # the htmx poll gets the fragment
    assert f"ok {LedgerEvent.objects.count()} events" in html
    assert "every 1s" not in html  # finished: the page stops asking
    assert sent == []


def test_a_second_check_while_one_runs_shows_the_running_one(viewer):
    operator = Client()
    operator.force_login(factories.operator())

    first = operator.post("/ledger/checks/")
    second = operator.post("/ledger/checks/")

    assert LedgerVerification.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_a_broken_chain_is_reported_with_the_first_bad_seq(viewer):
    run = LedgerVerification.objects.create(requested_by="test")
    event = append()
    drop_guard(connection)  # rolled back with the test's transaction
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_ledgerevent SET actor = 'forger' WHERE seq = %s", [event.seq])

    verification_execute(run_id=run.id)

    run.refresh_from_db()
    assert run.state == "broken"
    assert f"ledger chain broken at seq {event.seq}" in run.summary


def test_an_unknown_check_is_a_404(viewer):
    assert viewer.get("/ledger/checks/ghost/").status_code == 404
