"""The outbox sweeper sends again the envelopes whose message was lost, and only those."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from ledger.models import TaskTrace
from ledger.selectors import ledger_verify
from organization.services import genome_bootstrap
from tests.support.processes import drain_in_process
from workers.models import Directive, Envelope, Task
from workers.services import controller as controller_module
from workers.services.controller import controller_receive
from workers.services.directives import directive_submit
from workers.services.leaf import leaf_execute
from workers.services.outbox import envelope_lease, grace_period, outbox_sweep

pytestmark = pytest.mark.django_db

ROOT = "root-codebase-system"
LEAF = "primary-code-service"


class Broker:
    """Stands in for ``envelope_send``: remembers what was sent, or refuses while down."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.down = False

    def __call__(self, *, envelope_id: str, queue: str) -> None:
        if self.down:
            raise ConnectionRefusedError("broker down")
        self.sent.append((envelope_id, queue))


@pytest.fixture
def broker() -> Iterator[Broker]:
    fake = Broker()
    with mock.patch("workers.services.transport.envelope_send", side_effect=fake):
        yield fake


@pytest.fixture
def organization() -> None:
    genome_bootstrap(template="single", actor="operator:test")


def submit(title: str = "Lost in the post") -> Directive:
    # Not a transactional test: on-commit sends never run, as if each one was lost.
    return directive_submit(title=title, metadata={"requires_code_write": "true"}).directive


def later(envelope: Envelope, seconds: float) -> Any:
    return envelope.created_at + timedelta(seconds=seconds)


def test_an_envelope_whose_send_was_lost_is_sent_after_the_grace_period(
    organization: None, broker: Broker
) -> None:
    submit()
    envelope = Envelope.objects.get(target_node_id=ROOT)

    sweep = outbox_sweep(now=later(envelope, grace_period().total_seconds() + 1))

    assert sweep.sent == [envelope.id]
    assert broker.sent == [(envelope.id, "controllers")]
    envelope.refresh_from_db()
    assert envelope.resends == 1


def test_a_fresh_envelope_inside_the_grace_period_is_not_sent(
    organization: None, broker: Broker
) -> None:
    submit()
    envelope = Envelope.objects.get(target_node_id=ROOT)

    sweep = outbox_sweep(now=later(envelope, grace_period().total_seconds() - 1))

    assert sweep.sent == []
    assert broker.sent == []


def test_a_handled_envelope_is_never_sent_again(organization: None, broker: Broker) -> None:
    directive = submit()
    drain_in_process()
    assert Directive.objects.get(id=directive.id).status == Directive.Status.COMPLETED

    sweep = outbox_sweep(now=timezone.now() + timedelta(days=30))

    assert sweep.sent == []
    assert broker.sent == []


def test_running_it_twice_sends_once_and_the_resent_work_is_done_once(
    organization: None, broker: Broker
) -> None:
    directive = submit()
    envelope = Envelope.objects.get(target_node_id=ROOT)
    now = later(envelope, grace_period().total_seconds() + 1)

    first, second = outbox_sweep(now=now), outbox_sweep(now=now)

    assert first.sent == [envelope.id]
    assert second.sent == []
    # The lost message turns up after all: two deliveries of one envelope, one handling.
    assert controller_receive(envelope_id=envelope.id, worker="w1") == "handled"
    assert controller_receive(envelope_id=envelope.id, worker="w2") == "duplicate"
    drain_in_process()
    assert Task.objects.filter(directive_id=directive.id).count() == 1
    assert TaskTrace.objects.count() == 1
    assert Directive.objects.get(id=directive.id).status == Directive.Status.COMPLETED
    assert ledger_verify()[1] is None


def test_an_envelope_still_unhandled_is_sent_again_with_a_growing_backoff(
    organization: None, broker: Broker
) -> None:
    submit()
    envelope = Envelope.objects.get(target_node_id=ROOT)
    grace = grace_period().total_seconds()

    sent_at = [
        seconds
        for seconds in range(int(grace), int(grace * 8), 5)
        if outbox_sweep(now=later(envelope, seconds + 0.5)).sent
    ]

    # Sent after one grace period, then one later, then two later: not on every sweep.
    assert sent_at == [int(grace), int(grace * 2), int(grace * 4)]


def test_the_child_of_a_hop_whose_send_was_lost_is_sent(organization: None, broker: Broker) -> None:
    """A worker that dies between its commit and its publish: the root's envelope is
    handled (a redelivery answers "duplicate"), the task it routed is committed but unsent."""
    submit()
    root = Envelope.objects.get(target_node_id=ROOT)
    assert controller_receive(envelope_id=root.id, worker="w1") == "handled"
    child = Envelope.objects.get(target_node_id=LEAF)

    sweep = outbox_sweep(now=later(child, grace_period().total_seconds() + 1))

    assert sweep.sent == [child.id]
    assert broker.sent == [(child.id, "leaves")]


def test_a_leaf_running_its_task_holds_it_and_a_dead_leafs_lease_runs_out(
    organization: None, broker: Broker, settings: Any
) -> None:
    submit()
    controller_receive(envelope_id=Envelope.objects.get(target_node_id=ROOT).id, worker="w1")
    child = Envelope.objects.get(target_node_id=LEAF)
    past_grace = grace_period() + timedelta(seconds=1)
    lease = timedelta(seconds=settings.VSM_LEAF_LEASE_SECONDS)
    swept_while_running: list[list[str]] = []

    from workers.services import leaf as leaf_module

    real_execute = leaf_module._execute

    def provider_running(*args: Any) -> Any:
        swept_while_running.append(outbox_sweep(now=timezone.now() + past_grace).sent)
        return real_execute(*args)

    with mock.patch.object(leaf_module, "_execute", side_effect=provider_running):
        assert leaf_execute(envelope_id=child.id, worker="w1") == "handled"
    assert swept_while_running == [[]]
    drain_in_process()  # the result, up to the root

    # A leaf that died mid-task leaves its lease behind: sent again once it has run out.
    directive = submit("Second")
    root = Envelope.objects.get(correlation_id=directive.id, target_node_id=ROOT)
    controller_receive(envelope_id=root.id, worker="w1")
    orphan = Envelope.objects.get(correlation_id=directive.id, target_node_id=LEAF)
    envelope_lease(envelope_id=orphan.id, seconds=settings.VSM_LEAF_LEASE_SECONDS)
    assert outbox_sweep(now=timezone.now() + lease - timedelta(seconds=5)).sent == []
    assert outbox_sweep(now=timezone.now() + lease + timedelta(seconds=1)).sent == [orphan.id]


def test_a_send_refused_by_the_broker_stops_the_sweep_and_stays_due(
    organization: None, broker: Broker
) -> None:
    submit("one")
    submit("two")
    now = timezone.now() + grace_period() + timedelta(seconds=1)
    broker.down = True

    refused = outbox_sweep(now=now)

    assert refused.sent == []
    assert refused.failed == "ConnectionRefusedError: broker down"
    broker.down = False
    assert len(outbox_sweep(now=now).sent) == 2


@pytest.mark.parametrize("payload_type", sorted(controller_module.HANDLERS))
def test_every_controller_handler_claims_before_it_handles(
    organization: None, payload_type: str
) -> None:
    """Whatever the sweeper resends to a controller, a second delivery does nothing."""
    calls: list[str] = []
    envelope = Envelope.objects.create(
        channel_type="OperationToEnvironment",
        target_node_id=ROOT,
        priority="Normal",
        payload_type=payload_type,
        payload={},
        queue="controllers",
    )
    with mock.patch.dict(
        controller_module.HANDLERS, {payload_type: lambda hop: calls.append(hop.incoming.id)}
    ):
        first = controller_receive(envelope_id=envelope.id, worker="w1")
        second = controller_receive(envelope_id=envelope.id, worker="w2")

    assert (first, second, calls) == ("handled", "duplicate", [envelope.id])


def test_a_leaf_that_handed_its_task_back_answers_a_resend_as_a_duplicate(
    organization: None, broker: Broker
) -> None:
    submit()
    controller_receive(envelope_id=Envelope.objects.get(target_node_id=ROOT).id, worker="w1")
    child = Envelope.objects.get(target_node_id=LEAF)
    with (
        mock.patch("workers.services.leaf.paused", return_value=object()),
        mock.patch("workers.services.leaf.hold_if_paused"),
    ):
        assert leaf_execute(envelope_id=child.id, worker="w1") == "held"
    assert leaf_execute(envelope_id=child.id, worker="w2") == "duplicate"


def test_beat_sync_declares_the_sweep() -> None:
    call_command("beat_sync", stdout=StringIO())

    schedule = PeriodicTask.objects.get(name="vsm.outbox.sweep")
    assert (schedule.task, schedule.queue, schedule.enabled) == (
        "vsm.outbox.sweep",
        "controllers",
        True,
    )
    assert schedule.interval.every == 30


@override_settings(VSM_OUTBOX_GRACE_SECONDS=0)
def test_the_command_lists_what_waits_and_sends_it(organization: None, broker: Broker) -> None:
    directive = submit()
    listed = StringIO()
    call_command("outbox_sweep", "--list", stdout=listed)
    assert f"(directive {directive.id}," in listed.getvalue()
    assert "1 envelope(s) waiting to be sent" in listed.getvalue()
    assert broker.sent == []

    out = StringIO()
    call_command("outbox_sweep", stdout=out)
    assert "sent 1 envelope(s) again" in out.getvalue()
    assert len(broker.sent) == 1


@override_settings(VSM_OUTBOX_GRACE_SECONDS=0)
def test_the_command_fails_when_the_broker_refuses(organization: None, broker: Broker) -> None:
    submit()
    broker.down = True
    with pytest.raises(CommandError, match="the broker refused a send"):
        call_command("outbox_sweep", stdout=StringIO())


@override_settings(VSM_OUTBOX_GRACE_SECONDS=0)
def test_the_beat_task_runs_the_sweep(organization: None, broker: Broker) -> None:
    from workers.tasks import sweep_outbox

    submit()
    assert sweep_outbox() == 1
    assert len(broker.sent) == 1
