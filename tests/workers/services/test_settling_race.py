"""Two results of one directive handled at the same moment still settle it (once)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection

from ledger import kinds
from ledger.models import LedgerEvent
from organization.services import genome_bootstrap
from workers.models import Directive, Envelope
from workers.services import controller
from workers.services.controller import results
from workers.services.delivery import envelope_deliver
from workers.services.directives import directive_submit

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_results_finishing_together_settle_the_directive_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    genome_bootstrap(template="single", actor="operator:test")
    directive = directive_submit(
        title="Two at once",
        metadata={"requires_code_write": "true"},
        planned_tasks=[{"key": "a", "title": "first"}, {"key": "b", "title": "second"}],
    ).directive
    # Run until both results wait at the root.
    while (
        Envelope.objects.filter(handled_at__isnull=True, payload_type="vsm.task_result").count() < 2
    ):
        pending = (
            Envelope.objects.filter(handled_at__isnull=True)
            .exclude(payload_type="vsm.task_result")
            .order_by("created_at")
            .first()
        )
        assert pending is not None, "the organization stopped before both results came back"
        envelope_deliver(envelope_id=pending.id, worker="in-process")
    first, second = Envelope.objects.filter(handled_at__isnull=True).order_by("created_at")

    # The first handler lingers before it settles, with its task already marked finished.
    real_route_ready = results.route_ready
    lingering = threading.Event()

    def slow_route_ready(*args: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == "first":
            lingering.set()
            time.sleep(0.5)
        real_route_ready(*args, **kwargs)

    monkeypatch.setattr(results, "route_ready", slow_route_ready)

    def handle(envelope_id: str) -> None:
        try:
            controller.controller_receive(envelope_id=envelope_id, worker="race")
        finally:
            connection.close()

    one = threading.Thread(target=handle, args=[first.id], name="first")
    one.start()
    assert lingering.wait(10)
    two = threading.Thread(target=handle, args=[second.id], name="second")
    two.start()
    one.join(20)
    two.join(20)

    assert Directive.objects.get(id=directive.id).status == "completed"
    settled = LedgerEvent.objects.filter(directive_id=directive.id, kind=kinds.DIRECTIVE_COMPLETED)
    assert settled.count() == 1
