"""The embedded broker (vsmsite/broker.py) keeps every message until it is acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

from tests.support.processes import wait_until
from vsmsite.broker import _claim_holder_alive, _process_start_time
from vsmsite.broker_paths import doorbell_directory

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker_path(tmp_path: Path) -> str:
    return str(tmp_path / "broker.sqlite3")


def connect(path: str) -> Connection:
    return Connection(
        "embedded://localhost", transport_options={"database": path, "polling_interval": 0.01}
    )


def publish(path: str, queue: Queue, body: object, **options: object) -> None:
    with connect(path) as connection:
        connection.Producer().publish(
            body,
            routing_key=queue.routing_key,
            exchange=queue.exchange,
            declare=[queue],
            serializer="json",
            **options,
        )


def test_a_message_published_before_any_consumer_waits_for_one(broker_path: str) -> None:
    queue = Queue("work", Exchange("work", type="direct"), routing_key="work")
    publish(broker_path, queue, {"n": 1})

    with connect(broker_path) as connection:
        message = connection.SimpleQueue(queue).get(timeout=2)
        assert message.payload == {"n": 1}
        assert not message.delivery_info.get("redelivered")
        message.ack()
        with pytest.raises(connection.SimpleQueue(queue).Empty):
            connection.SimpleQueue(queue).get(timeout=0.2)


def test_an_unacknowledged_message_is_invisible_to_others_and_returns_on_close(
    broker_path: str,
) -> None:
    queue = Queue("work", Exchange("work", type="direct"), routing_key="work")
    publish(broker_path, queue, {"n": 1})

    first = connect(broker_path)
    second = connect(broker_path)
    try:
        held = first.SimpleQueue(queue).get(timeout=2)
        assert held.payload == {"n": 1}
        with pytest.raises(second.SimpleQueue(queue).Empty):
            second.SimpleQueue(queue).get(timeout=0.3)
        first.release()  # closes without acking: the message goes back
        again = second.SimpleQueue(queue).get(timeout=2)
        assert again.payload == {"n": 1}
        assert again.delivery_info["redelivered"] is True
        again.ack()
    finally:
        second.release()


def test_a_message_claimed_by_a_killed_consumer_is_delivered_again(broker_path: str) -> None:
    queue = Queue("work", Exchange("work", type="direct"), routing_key="work")
    publish(broker_path, queue, {"task": "survive a crash"})
    script = (
        "import sys, time, vsmsite.broker as b; b.register()\n"
        "from kombu import Connection, Exchange, Queue\n"
        f"c = Connection('embedded://localhost', transport_options={{'database': {broker_path!r}}})"
        "\n"
        "q = Queue('work', Exchange('work', type='direct'), routing_key='work')\n"
        "m = c.SimpleQueue(q).get(timeout=5)\n"
        "print('claimed', m.payload['task'], flush=True)\n"
        "time.sleep(60)\n"
    )
    consumer = subprocess.Popen(
        [sys.executable, "-c", script], cwd=BASE_DIR, stdout=subprocess.PIPE, text=True
    )
    try:
        assert consumer.stdout is not None
        assert consumer.stdout.readline().strip() == "claimed survive a crash"
        with connect(broker_path) as connection, pytest.raises(connection.SimpleQueue(queue).Empty):
            connection.SimpleQueue(queue).get(timeout=0.3)
        os.kill(consumer.pid, signal.SIGKILL)
        consumer.wait(timeout=10)

        with connect(broker_path) as connection:
            message = connection.SimpleQueue(queue).get(timeout=5)
            assert message.payload == {"task": "survive a crash"}
            assert message.delivery_info["redelivered"] is True
            message.ack()
    finally:
        if consumer.poll() is None:
            consumer.kill()


def test_fanout_reaches_every_bound_queue_across_connections(broker_path: str) -> None:
    exchange = Exchange("broadcast", type="fanout")
    queues = [Queue(f"listener-{n}", exchange) for n in range(2)]
    for queue in queues:  # each listener binds from its own connection
        with connect(broker_path) as connection:
            queue(connection.default_channel).declare()

    with connect(broker_path) as connection:
        connection.Producer().publish({"hello": "all"}, exchange=exchange, serializer="json")

    with connect(broker_path) as connection:
        for queue in queues:
            message = connection.SimpleQueue(queue).get(timeout=2)
            assert message.payload == {"hello": "all"}
            message.ack()


def test_an_expired_message_is_dropped_unread(broker_path: str) -> None:
    queue = Queue("work", Exchange("work", type="direct"), routing_key="work")
    publish(broker_path, queue, {"stale": True}, expiration=0.05)
    publish(broker_path, queue, {"stale": False})
    time.sleep(0.1)

    with connect(broker_path) as connection:
        message = connection.SimpleQueue(queue).get(timeout=2)
        assert message.payload == {"stale": False}
        message.ack()


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_zombie_worker_releases_its_claims() -> None:
    """A worker that died but was not reaped still answers ``kill(pid, 0)``: its claims must
    be released all the same, or its messages wait for whoever reaps it."""
    pid = os.fork()
    if pid == 0:  # the child: exit at once, and stay a zombie until reaped
        os._exit(0)
    try:
        wait_until(lambda: _state(pid) == "Z", 10, "zombie")
        token = f"{pid}:{_process_start_time(pid)}"
        os.kill(pid, 0)  # the signal still reaches it
        assert not _claim_holder_alive(token)
        assert _claim_holder_alive(f"{os.getpid()}:{_process_start_time(os.getpid())}")
    finally:
        os.waitpid(pid, 0)


def test_a_stopped_worker_keeps_its_claims() -> None:
    """The other side of the zombie rule: a process that is alive but stopped (SIGSTOP, a
    debugger) still holds its claims; its messages are not handed to a second worker."""
    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    try:
        os.kill(pid, signal.SIGSTOP)
        wait_until(lambda: _state(pid) == "T", 10, "stop")
        assert _claim_holder_alive(f"{pid}:{_process_start_time(pid)}")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_a_waiting_consumer_is_woken_by_another_process_s_publish(broker_path: str) -> None:
    """It does not wait out its polling interval (30 s here): the publish rings its doorbell."""
    queue = Queue("work", Exchange("work", type="direct"), routing_key="work")
    received: list[tuple[object, float]] = []
    options = {"database": broker_path, "polling_interval": 30.0}

    def consume() -> None:
        with Connection("embedded://localhost", transport_options=options) as connection:
            message = connection.SimpleQueue(queue).get(timeout=60)
            received.append((message.payload, time.monotonic()))
            message.ack()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    time.sleep(1.0)  # it has polled the empty queue once and waits
    script = (
        "import vsmsite.broker as b; b.register()\n"
        "from kombu import Connection, Exchange, Queue\n"
        f"c = Connection('embedded://localhost', transport_options={{'database': {broker_path!r}}})"
        "\n"
        "q = Queue('work', Exchange('work', type='direct'), routing_key='work')\n"
        "c.Producer().publish({'n': 1}, routing_key='work', exchange=q.exchange, declare=[q])\n"
    )
    published_at = time.monotonic()
    subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, check=True, timeout=30)
    consumer.join(timeout=20)

    assert received, "the consumer was not woken within 20 s of a 30 s polling interval"
    payload, at = received[0]
    assert payload == {"n": 1}
    assert at - published_at < 20


def test_a_killed_consumer_s_doorbell_is_removed_by_the_next_publish(broker_path: str) -> None:
    script = (
        "import time\n"
        "from vsmsite.broker import Doorbell\n"
        "from vsmsite.broker_paths import doorbell_directory\n"
        f"bell = Doorbell(doorbell_directory({broker_path!r}))\n"
        "print(bell.path, flush=True)\n"
        "time.sleep(60)\n"
    )
    consumer = subprocess.Popen(
        [sys.executable, "-c", script], cwd=BASE_DIR, stdout=subprocess.PIPE, text=True
    )
    try:
        assert consumer.stdout is not None
        path = consumer.stdout.readline().strip()
        assert os.path.exists(path)
        os.kill(consumer.pid, signal.SIGKILL)  # no chance to remove its socket
        consumer.wait(timeout=10)
        assert os.path.exists(path)

        queue = Queue("work", Exchange("work", type="direct"), routing_key="work")
        publish(broker_path, queue, {"n": 1})

        assert not os.path.exists(path)
        assert os.listdir(doorbell_directory(broker_path)) == []
    finally:
        if consumer.poll() is None:
            consumer.kill()
