"""A redelivered envelope is recognised by id and does nothing twice (in-process handlers)."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from ledger.models import LedgerEvent, TaskTrace
from organization.services import genome_bootstrap
from workers.models import Directive, Envelope, Task
from workers.providers.sandbox import Superseded
from workers.services.controller import controller_receive
from workers.services.directives import directive_submit
from workers.services.leaf import leaf_execute

pytestmark = pytest.mark.django_db


def next_envelope(target: str) -> Envelope:
    return Envelope.objects.filter(target_node_id=target, handled_at__isnull=True).get()


def test_each_hop_handles_a_duplicate_delivery_as_a_no_op(
    django_capture_on_commit_callbacks: Any,
) -> None:
    genome_bootstrap(template="single", actor="operator:test")
    with django_capture_on_commit_callbacks():  # keep Celery out: we deliver by hand
        directive = directive_submit(
            title="Once", metadata={"requires_code_write": "true"}
        ).directive
        root_envelope = next_envelope("root-codebase-system")

        assert controller_receive(envelope_id=root_envelope.id, worker="w1") == "handled"
        events = LedgerEvent.objects.count()
        assert controller_receive(envelope_id=root_envelope.id, worker="w2") == "duplicate"
        assert LedgerEvent.objects.count() == events
        assert Task.objects.count() == 1

        leaf_envelope = next_envelope("primary-code-service")
        assert leaf_execute(envelope_id=leaf_envelope.id, worker="w1") == "handled"
        assert leaf_execute(envelope_id=leaf_envelope.id, worker="w2") == "duplicate"
        assert TaskTrace.objects.count() == 1

        result_envelope = next_envelope("root-codebase-system")
        assert controller_receive(envelope_id=result_envelope.id, worker="w1") == "handled"
        assert controller_receive(envelope_id=result_envelope.id, worker="w1") == "duplicate"

    directive.refresh_from_db()
    assert directive.status == Directive.Status.COMPLETED
    assert Envelope.objects.filter(handled_at__isnull=True).count() == 0


def test_a_delivery_for_an_unknown_envelope_is_dropped_with_a_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert controller_receive(envelope_id="nope", worker="w1") == "missing"
    assert leaf_execute(envelope_id="nope", worker="w1") == "missing"
    assert "envelope nope does not exist" in caplog.text


def test_a_delivery_superseded_by_a_newer_one_writes_nothing_and_the_newer_one_finishes(
    django_capture_on_commit_callbacks: Any,
) -> None:
    """A newer delivery of the envelope killed this one's agent (docs/operations.md, "The
    agent sandbox"): the older delivery claims nothing, so the task still gets one result."""
    genome_bootstrap(template="single", actor="operator:test")
    with django_capture_on_commit_callbacks():
        directive_submit(title="Once", metadata={"requires_code_write": "true"})
        controller_receive(envelope_id=next_envelope("root-codebase-system").id, worker="w1")
        leaf_envelope = next_envelope("primary-code-service")
        overtaken = mock.Mock()
        overtaken.complete.side_effect = Superseded("a newer delivery of the task took over ws")

        with mock.patch("workers.services.leaf.provider_for", return_value=overtaken):
            assert leaf_execute(envelope_id=leaf_envelope.id, worker="w1") == "superseded"

        assert TaskTrace.objects.count() == 0
        leaf_envelope.refresh_from_db()
        assert leaf_envelope.handled_at is None
        assert leaf_execute(envelope_id=leaf_envelope.id, worker="w2") == "handled"
        assert TaskTrace.objects.count() == 1
