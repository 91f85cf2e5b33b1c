"""A worker that ran a controller hop runs the controller hop it sent next, without a round
trip through the broker; leaves' work, fan-outs past the first and failures still go
through the broker, and nothing is lost when the worker dies in between."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from celery.app.amqp import Queues
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from ledger import kinds
from ledger.models import LedgerEvent
from ledger.selectors import ledger_verify
from organization.services import genome_bootstrap
from tests import factories
from workers import tasks
from workers.models import Envelope
from workers.services import delivery
from workers.services.controller import controller_receive
from workers.services.directives import directive_submit
from workers.services.outbox import envelopes_due
from workers.services.transport import CONTROLLER_QUEUE, LEAF_QUEUE, send_committed

# On-commit callbacks (the sends) must run, as in a worker.
pytestmark = pytest.mark.django_db(transaction=True)

ROOT, SYSTEM, CODER = "root-codebase-system", "backend-system", "backend-coder"
CODER_OF_SINGLE = "primary-code-service"
CODE = {"requires_code_write": "true"}


class Broker:
    """Stands in for ``envelope_send``: remembers what went through the broker."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def __call__(self, *, envelope_id: str, queue: str) -> None:
        self.sent.append((envelope_id, queue))

    def take(self) -> tuple[str, str]:
        assert self.sent, "nothing went through the broker"
        return self.sent.pop(0)


@pytest.fixture
def broker() -> Iterator[Broker]:
    fake = Broker()
    with mock.patch("workers.services.transport.envelope_send", side_effect=fake):
        yield fake


def run_task(envelope_id: str, queue: str) -> str:
    """The ``vsm.deliver`` task's body, as a worker runs it for one broker message."""
    return str(tasks.deliver.run(envelope_id, queue))


@contextmanager
def serving_both_queues() -> Iterator[None]:
    """This process as a worker started with ``-Q controllers,leaves`` (outside a worker it
    consumes neither, like a leaf-only machine)."""
    consumed = {CONTROLLER_QUEUE: None, LEAF_QUEUE: None}
    with mock.patch.object(Queues, "consume_from", new_callable=mock.PropertyMock) as queues:
        queues.return_value = consumed
        yield


@contextmanager
def killed_on(dies: Callable[[Envelope], bool]) -> Iterator[None]:
    """The worker is killed (SystemExit, which no handler catches) as it is about to run a
    controller hop onward on an envelope that ``dies``; the block must meet it."""
    real = controller_receive

    def receive(*, envelope_id: str, worker: str) -> str:
        if dies(Envelope.objects.get(id=envelope_id)):
            raise SystemExit("worker killed")
        return real(envelope_id=envelope_id, worker=worker)

    with (
        mock.patch.object(delivery, "controller_receive", side_effect=receive),
        pytest.raises(SystemExit),
    ):
        yield


def directive_status(directive_id: str) -> str:
    """The directive's status as the API reports it."""
    api = APIClient()
    api.force_authenticate(factories.admin())
    return str(api.get(f"/api/directives/{directive_id}/").json()["status"])


def envelope_to(node_id: str, payload_type: str) -> Envelope:
    return Envelope.objects.get(target_node_id=node_id, payload_type=payload_type)


def test_controller_hops_run_onward_in_the_worker_that_ran_the_hop_before(
    broker: Broker,
) -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    directive = directive_submit(title="Two hops at a time", metadata=CODE).directive
    assert broker.sent == [(envelope_to(ROOT, "vsm.directive").id, CONTROLLER_QUEUE)]

    # The root routes to the system, whose hop runs in the same task, each in its own
    # transaction (one ledger head lock each); only the leaf's packet takes the broker.
    with CaptureQueriesContext(connection) as queries:
        assert run_task(*broker.take()) == "handled"
    head_locks = [
        q
        for q in queries.captured_queries
        if "ledger_ledgerhead" in q["sql"] and q["sql"].lstrip().upper().startswith("SELECT")
    ]
    assert len(head_locks) == 2
    packet = envelope_to(CODER, "vsm.task_packet")
    assert broker.sent == [(packet.id, LEAF_QUEUE)]
    relayed = envelope_to(SYSTEM, "vsm.task_packet")
    assert relayed.handled_at is not None and relayed.deliveries == 1
    assert directive_status(directive.id) == "running"

    # The leaf's result goes to the system through the broker; the system's hop relays it
    # to the root, whose hop settles the directive in the same task.
    run_task(*broker.take())
    assert broker.sent == [(envelope_to(SYSTEM, "vsm.task_result").id, CONTROLLER_QUEUE)]
    run_task(*broker.take())
    assert broker.sent == []
    assert directive_status(directive.id) == "completed"
    assert Envelope.objects.filter(handled_at__isnull=True).count() == 0
    received = LedgerEvent.objects.filter(kind=kinds.MESSAGE_RECEIVED).values_list(
        "node_id", flat=True
    )
    assert sorted(str(node) for node in received) == sorted([ROOT, SYSTEM, CODER, SYSTEM, ROOT])
    assert ledger_verify()[1] is None


@override_settings(VSM_LOCAL_CONTROLLER_HOPS=0)
def test_with_no_local_hops_every_hop_goes_through_the_broker(broker: Broker) -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    directive_submit(title="All by post", metadata=CODE)
    run_task(*broker.take())
    relayed = envelope_to(SYSTEM, "vsm.task_packet")
    assert relayed.handled_at is None
    assert broker.sent == [(relayed.id, CONTROLLER_QUEUE)]


class Controllers:
    """Stands in for the controllers: each hop sends what ``sends`` says, via the same
    on-commit path a real hop's envelopes take."""

    def __init__(self, sends: dict[str, list[str]], fails: set[str] | None = None) -> None:
        self.sends = sends
        self.fails = fails or set()
        self.handled: list[str] = []

    def __call__(self, *, envelope_id: str, worker: str, **_: Any) -> str:
        if envelope_id in self.fails:
            raise RuntimeError(f"{envelope_id} breaks")
        self.handled.append(envelope_id)
        for sent in self.sends.get(envelope_id, []):
            send_committed(envelope_id=sent, queue=CONTROLLER_QUEUE)
        return "handled"


@pytest.fixture
def controllers() -> Iterator[Controllers]:
    fake = Controllers({})
    with mock.patch.object(delivery, "controller_receive", side_effect=fake):
        yield fake


def ping_pong(length: int) -> dict[str, list[str]]:
    return {f"hop-{n}": [f"hop-{n + 1}"] for n in range(length)}


@override_settings(VSM_LOCAL_CONTROLLER_HOPS=3)
def test_a_chain_of_controller_hops_goes_back_to_the_broker_past_the_limit(
    broker: Broker, controllers: Controllers
) -> None:
    controllers.sends = ping_pong(10)
    assert run_task("hop-0", CONTROLLER_QUEUE) == "handled"
    assert controllers.handled == ["hop-0", "hop-1", "hop-2", "hop-3"]
    assert broker.sent == [("hop-4", CONTROLLER_QUEUE)]


def test_a_fan_out_continues_with_its_first_envelope_and_posts_the_others(
    broker: Broker, controllers: Controllers
) -> None:
    controllers.sends = {"root": ["a", "b", "c"], "a": ["a-up"]}
    run_task("root", CONTROLLER_QUEUE)
    assert controllers.handled == ["root", "a", "a-up"]
    # The others go out before the first is handled, so other workers take them meanwhile.
    assert broker.sent == [("b", CONTROLLER_QUEUE), ("c", CONTROLLER_QUEUE)]


def test_an_onward_hop_that_fails_goes_through_the_broker_to_be_retried(
    broker: Broker, controllers: Controllers
) -> None:
    controllers.sends = {"root": ["breaks"]}
    controllers.fails = {"breaks"}
    assert run_task("root", CONTROLLER_QUEUE) == "handled"
    assert controllers.handled == ["root"]
    assert broker.sent == [("breaks", CONTROLLER_QUEUE)]


def test_the_first_hops_failure_is_the_tasks_and_sends_nothing(
    broker: Broker, controllers: Controllers
) -> None:
    controllers.fails = {"root"}
    with pytest.raises(RuntimeError):
        run_task("root", CONTROLLER_QUEUE)
    assert broker.sent == []


def test_a_leaf_only_worker_sends_its_result_through_the_broker(broker: Broker) -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    directive_submit(title="Leaf by post", metadata=CODE)
    run_task(*broker.take())
    # This process consumes no queue: a worker started with -Q leaves (or leaf.<id>).
    run_task(*broker.take())
    result = envelope_to(SYSTEM, "vsm.task_result")
    assert result.handled_at is None
    assert broker.sent == [(result.id, CONTROLLER_QUEUE)]


def test_a_worker_serving_both_queues_settles_the_directive_after_the_leaf(
    broker: Broker,
) -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    directive = directive_submit(title="Leaf and up", metadata=CODE).directive
    run_task(*broker.take())
    with serving_both_queues():
        run_task(*broker.take())  # the leaf, then its system, then the root
    assert broker.sent == []
    assert directive_status(directive.id) == "completed"
    assert Envelope.objects.filter(handled_at__isnull=True).count() == 0


def test_a_worker_that_dies_before_its_onward_hop_loses_nothing(
    broker: Broker,
) -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    directive_submit(title="Killed in between", metadata=CODE)
    envelope_id, queue = broker.take()
    with killed_on(lambda envelope: envelope.id != envelope_id):  # the root's hop runs
        run_task(envelope_id, queue)
    relayed = envelope_to(SYSTEM, "vsm.task_packet")
    assert relayed.handled_at is None and broker.sent == []
    later = timezone.now() + timedelta(minutes=5)
    assert Envelope.objects.filter(envelopes_due(now=later), id=relayed.id).exists()
    # Its message was never acknowledged: the broker hands it to another worker, whose
    # duplicate delivery takes the onward hop up at once.
    assert run_task(envelope_id, queue) == "duplicate"
    relayed.refresh_from_db()
    assert relayed.handled_at is not None and relayed.deliveries == 1
    assert broker.sent == [(envelope_to(CODER, "vsm.task_packet").id, LEAF_QUEUE)]


def test_a_worker_that_dies_deep_in_the_chain_after_a_leaf_loses_nothing(
    broker: Broker,
) -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    directive = directive_submit(title="Killed at the top", metadata=CODE).directive
    run_task(*broker.take())
    leaf_message = broker.take()
    with serving_both_queues():
        with killed_on(lambda envelope: envelope.target_node_id == ROOT):
            run_task(*leaf_message)  # the leaf, its system; dies before the root's hop
        assert envelope_to(SYSTEM, "vsm.task_result").handled_at is not None
        assert directive_status(directive.id) == "running"
        assert run_task(*leaf_message) == "duplicate"
    assert directive_status(directive.id) == "completed"
    assert broker.sent == []


def test_a_worker_that_dies_handling_a_leafs_pain_signal_loses_nothing(
    broker: Broker,
) -> None:
    """The leaf's pain signal (a capability violation) is other work than the directive (its
    correlation is the signal's): the redelivery still finds it, down the causation."""
    genome_bootstrap(template="single", actor="operator:test")
    directive_submit(
        title="Review", metadata={"target_child": CODER_OF_SINGLE, "required_capability": "review"}
    )
    run_task(*broker.take())  # the root routes to its leaf
    leaf_message = broker.take()
    with serving_both_queues():
        with killed_on(lambda envelope: envelope.payload_type == "vsm.algedonic_signal"):
            run_task(*leaf_message)  # the leaf commits its result and pain; dies on the pain
        pain = Envelope.objects.get(payload_type="vsm.algedonic_signal")
        assert pain.handled_at is None
        assert pain.correlation_id != Envelope.objects.get(id=leaf_message[0]).correlation_id
        assert not LedgerEvent.objects.filter(kind=kinds.ALGEDONIC_ESCALATION_AT_ROOT).exists()
        assert run_task(*leaf_message) == "duplicate"
    pain.refresh_from_db()
    assert pain.handled_at is not None and pain.deliveries == 1
    assert LedgerEvent.objects.filter(kind=kinds.ALGEDONIC_ESCALATION_AT_ROOT).count() == 1


def test_a_leaf_only_worker_sends_on_what_a_dead_worker_left_unhandled(
    broker: Broker,
) -> None:
    """The dead worker served both queues; the leaf's message comes back to a leaf-only
    worker, which runs no metasystem's hop but sends the stranded one through the broker."""
    genome_bootstrap(template="nested", actor="operator:test")
    directive = directive_submit(title="Killed at the top", metadata=CODE).directive
    run_task(*broker.take())
    leaf_message = broker.take()
    with serving_both_queues(), killed_on(lambda envelope: envelope.target_node_id == ROOT):
        run_task(*leaf_message)
    stranded = envelope_to(ROOT, "vsm.task_result")
    assert stranded.handled_at is None and broker.sent == []
    assert run_task(*leaf_message) == "duplicate"  # outside serving_both_queues: leaf-only
    assert broker.sent == [(stranded.id, CONTROLLER_QUEUE)]
    stranded.refresh_from_db()
    assert stranded.handled_at is None  # not run here
    assert directive_status(directive.id) == "running"
    run_task(*broker.take())
    assert directive_status(directive.id) == "completed"
