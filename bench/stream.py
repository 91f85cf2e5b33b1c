"""Latency from an algedonic signal to its frame at /ws/events/ clients, beside its floor.

Runs against a throwaway test database (created and dropped here) of whatever
DATABASE_URL selects, with daphne serving it in a subprocess, and a broker and
channel-layer keys nobody else reads (a scratch embedded-broker file, or the
REDIS_URL server under a key prefix of its own):

    .venv/bin/python bench/stream.py [--signals 60] [--clients 1,100]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/vsm REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/stream.py

It bootstraps the nested organization, connects N websocket clients (in this
process, with a logged-in session) to ``/ws/events/?node=backend-system`` and
raises pain signals at backend-coder one at a time. A sample is the time from
just before a signal leaves this process to the arrival of its
``algedonic_signal_raised`` frame at one client. Printed, per client count:

* raw ``group_send`` in-process: the channel layer alone, in this process: one
  ``group_send`` to N channels until every ``receive`` returned (no daphne,
  HTTP, database, ledger or websocket);
* floor, ring in daphne: ``POST /bench-floor/ring/`` to the same daphne, which
  ``group_send``s a ready frame to N websockets that only relay it
  (``bench/stream_floor.py``): the floor of a signal POST;
* floor, group_send from here (Redis only): the same websockets, rung by a
  ``group_send`` from this process: the floor of an append elsewhere;
* signal POST: ``POST /api/signals/`` to daphne, whose ledger append rings the
  bell in daphne's own process, so every layer wakes the consumers;
* append elsewhere: ``signal_raise`` called in this process, as a Celery worker
  would: only a layer that crosses processes (Redis) rings daphne's consumers;
  on the embedded default they find the event by their one-second poll, and no
  floor exists (nothing reaches daphne's in-memory layer from outside);
* append elsewhere, from its commit (Redis only): the same, each sample timed from
  the moment the append's transaction committed instead of before the call. The
  event exists, and its bell rings, from then on: what the stream adds, where the
  floor's sender only ``group_send``s (the append's own cost is bench/ledger_append.py's).

The last column divides each stream series' p50 by its floor's.

No Celery worker runs: nothing here waits for the signals to be handled.
The figures are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import django

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

# Everything the run writes (the SQLite test database, the embedded broker's
# file) goes to a scratch directory, inherited by daphne.
SCRATCH = Path(tempfile.mkdtemp(prefix="vsm-bench-stream-"))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
os.environ["VSM_VAR_DIR"] = str(SCRATCH)
os.environ["VSM_BROKER_PATH"] = str(SCRATCH / "broker.sqlite3")
# Production runs without DEBUG; with it Django keeps every query in memory.
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsmsite.settings")
django.setup()

from channels.layers import get_channel_layer  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from bench.stream_floor import FLOOR_RING_PATH, FLOOR_SOCKET_PATH  # noqa: E402
from ledger import kinds  # noqa: E402
from organization.services import genome_bootstrap  # noqa: E402
from tests import factories  # noqa: E402
from tests.support.processes import process_env  # noqa: E402
from tests.support.websocket import WebSocketClient  # noqa: E402
from vsmsite.celery import app  # noqa: E402
from workers.domain.algedonic import AlgedonicSignal  # noqa: E402
from workers.services.algedonic import signal_raise  # noqa: E402

ON_REDIS = bool(settings.REDIS_URL)
# On Redis, Celery's queues and the channel layer's groups (the ledger bell) keep
# their names under this prefix, here and in daphne, so neither meets anybody else's.
KEY_PREFIX = f"vsm-bench-stream-{os.getpid()}:"
WAIT_SECONDS = 10.0  # for one signal to reach every client
# Between signals, at random: a fixed pause would lock the signals' phase to the
# consumers' one-second poll and report one point of its range.
PAUSE_SECONDS = (0.05, 1.05)


def use_key_prefix(prefix: str) -> None:
    options = dict(app.conf.broker_transport_options or {})
    app.conf.broker_transport_options = {**options, "global_keyprefix": prefix}
    layer = cast(dict[str, Any], settings.CHANNEL_LAYERS["default"])
    if "redis" in layer["BACKEND"]:
        layer.setdefault("CONFIG", {})["prefix"] = prefix


if ON_REDIS:
    use_key_prefix(KEY_PREFIX)

# daphne, after the same use_key_prefix() as above when asked for.
DAPHNE_BOOT = """
import os, sys
import django
django.setup()
from django.conf import settings
from vsmsite.celery import app
prefix = os.environ.get("VSM_BENCH_KEYPREFIX")
if prefix:
    options = dict(app.conf.broker_transport_options or {})
    app.conf.broker_transport_options = {**options, "global_keyprefix": prefix}
    layer = settings.CHANNEL_LAYERS["default"]
    if "redis" in layer["BACKEND"]:
        layer.setdefault("CONFIG", {})["prefix"] = prefix
from daphne.cli import CommandLineInterface
CommandLineInterface().run(sys.argv[1:])
"""


T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(int(len(ordered) * 0.95) - 1, 0)]


class Daphne:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = process_env(VSM_BENCH_KEYPREFIX=KEY_PREFIX if ON_REDIS else "")
        self.log = (SCRATCH / "daphne.log").open("w")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-c", DAPHNE_BOOT, "-v", "0"),
                *("-b", "127.0.0.1", "-p", str(self.port), "bench.stream_floor:application"),
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/admin/login/", timeout=2).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "daphne did not start: " + (SCRATCH / "daphne.log").read_text()
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Arrivals:
    """When each signal's frame reached each client (keyed by the signal's unique message)."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.expected = 1
        self.complete: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def arrived(self, message: str) -> None:
        times = self.times[message]
        times.append(time.perf_counter())
        if len(times) >= self.expected:
            self.complete[message].set()


async def follow(client: WebSocketClient, arrivals: Arrivals) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        async for message in client.messages():
            frame = json.loads(message)
            if frame["kind"] == kinds.ALGEDONIC_SIGNAL_RAISED:
                arrivals.arrived(frame["payload"]["message"])


STREAM_PATH = "/ws/events/?node=backend-system"


def floor_group(clients: int) -> str:
    return f"bench-floor-{os.getpid()}-{clients}"


def floor_frame(message: str) -> bytes:
    frame = {"kind": kinds.ALGEDONIC_SIGNAL_RAISED, "payload": {"message": message}}
    return json.dumps(frame).encode()


async def connect_clients(
    daphne: Daphne, cookie: str, count: int, arrivals: Arrivals, path: str
) -> list[tuple[WebSocketClient, asyncio.Task[None]]]:
    headers = {"Origin": daphne.url, "Cookie": cookie}
    clients = []
    for _ in range(count):
        client = await WebSocketClient.connect(daphne.port, path, headers)
        clients.append((client, asyncio.create_task(follow(client, arrivals))))
    # The consumers read the ledger's head after accepting; let them settle.
    await asyncio.sleep(0.5)
    return clients


async def close_clients(clients: list[tuple[WebSocketClient, asyncio.Task[None]]]) -> None:
    for client, _ in clients:
        await client.close()
    for _, following in clients:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following


def post_signal(daphne: Daphne, token: str, message: str) -> None:
    body = json.dumps({"severity": 7, "message": message, "target_node_id": "backend-coder"})
    request = urllib.request.Request(
        f"{daphne.url}/api/signals/",
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201, response.status


def raise_here(message: str) -> None:
    signal_raise(
        signal=AlgedonicSignal(severity=7, target_node_id="backend-coder", message=message),
        raised_by="bench",
    )


def raise_here_from_commit(message: str) -> float:
    """``raise_here``, returning the moment its transaction committed: the event exists
    from then on, and the bell rings from then on (an on_commit callback registered
    after this one). The stream's own latency runs from here, as the floor's from its
    ``group_send``."""
    committed: list[float] = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
        raise_here(message)
    return committed[0]


def ring_in_daphne(daphne: Daphne, clients: int, message: str) -> None:
    request = urllib.request.Request(
        f"{daphne.url}{FLOOR_RING_PATH}?group={floor_group(clients)}",
        data=floor_frame(message),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204, response.status


class LayerSender:
    """``group_send`` from this process on one long-lived loop, as the bell's thread does."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = ThreadPoolExecutor(max_workers=1)
        self.thread.submit(self.loop.run_forever)
        self.layer = get_channel_layer()

    def send(self, clients: int, message: str) -> None:
        ping = {"type": "bench.ping", "frame": floor_frame(message).decode()}
        sent = self.layer.group_send(floor_group(clients), ping)
        asyncio.run_coroutine_threadsafe(sent, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.shutdown()


async def stream_series(
    daphne: Daphne,
    cookie: str,
    clients: int,
    signals: int,
    send: Callable[[str], object],
    path: str = STREAM_PATH,
) -> tuple[list[float], list[float]]:
    """(arrival latencies at every client, the send call's own durations), in ms."""
    loop = asyncio.get_running_loop()
    arrivals = Arrivals()
    arrivals.expected = clients
    connected = await connect_clients(daphne, cookie, clients, arrivals, path)
    # One thread sends, so an append reuses its database connection.
    sender = ThreadPoolExecutor(max_workers=1)
    pauses = random.Random(clients)
    samples: list[float] = []
    sends: list[float] = []
    try:
        for index in range(signals + 3):  # the first three warm up
            name = getattr(send, "__name__", type(send).__name__)
            message = f"bench {os.getpid()} {clients} {name} {index}"
            started = time.perf_counter()
            stamp = await loop.run_in_executor(sender, send, message)
            sent = time.perf_counter()
            if isinstance(stamp, float):
                started = stamp  # the send says when its latency starts (its commit)
            await asyncio.wait_for(arrivals.complete[message].wait(), WAIT_SECONDS)
            if index >= 3:
                samples += [(arrived - started) * 1000 for arrived in arrivals.times[message]]
                sends.append((sent - started) * 1000)
            await asyncio.sleep(pauses.uniform(*PAUSE_SECONDS))
    finally:
        await loop.run_in_executor(sender, close_connection)
        sender.shutdown()
        await close_clients(connected)
    return samples, sends


async def raw_series(clients: int, sends: int) -> list[float]:
    layer = get_channel_layer()
    group = f"bench-raw-{os.getpid()}-{clients}"
    channels = [await layer.new_channel() for _ in range(clients)]
    for channel in channels:
        await layer.group_add(group, channel)
    samples: list[float] = []

    async def receive(channel: str, started: float) -> float:
        await layer.receive(channel)
        return (time.perf_counter() - started) * 1000

    try:
        for index in range(sends + 3):
            started = time.perf_counter()
            receivers = [asyncio.ensure_future(receive(c, started)) for c in channels]
            await layer.group_send(group, {"type": "bench.ping", "index": index})
            latencies = await asyncio.wait_for(asyncio.gather(*receivers), WAIT_SECONDS)
            if index >= 3:
                samples += latencies
            await asyncio.sleep(PAUSE_SECONDS[0])
    finally:
        for channel in channels:
            await layer.group_discard(group, channel)
    return samples


def close_connection() -> None:
    connection.close()


def in_thread(series: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async series on a loop of its own (the ORM must not see a running loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(series())).result()


Row = tuple[str, int, tuple[float, float], tuple[float, float] | None]


def measure(
    daphne: Daphne,
    cookie: str,
    clients: int,
    signals: int,
    post: Callable[[str], None],
    sender: LayerSender | None,
) -> list[Row]:
    """Every series at one client count, each stream series beside its floor."""

    def series(send: Callable[[str], None], path: str = STREAM_PATH) -> list[float]:
        run = partial(stream_series, daphne, cookie, clients, signals, send, path)
        return in_thread(run)[0]

    def ring(message: str) -> None:
        ring_in_daphne(daphne, clients, message)

    floor_path = f"{FLOOR_SOCKET_PATH}?group={floor_group(clients)}"
    raw = percentiles(in_thread(partial(raw_series, clients, signals)))
    rows: list[Row] = [("raw group_send in-process (no daphne)", clients, raw, None)]
    ring_floor = percentiles(series(ring, floor_path))
    rows.append(("floor: ring in daphne -> relay sockets", clients, ring_floor, None))
    samples, sends = in_thread(partial(stream_series, daphne, cookie, clients, signals, post))
    rows.append(("signal POST -> /ws/events/", clients, percentiles(samples), ring_floor))
    rows.append(("  (the POST's own round trip)", clients, percentiles(sends), None))
    elsewhere_floor = None
    if sender is not None:
        elsewhere_floor = percentiles(series(partial(sender.send, clients), floor_path))
        rows.append(("floor: group_send here -> relay sockets", clients, elsewhere_floor, None))
    samples, sends = in_thread(partial(stream_series, daphne, cookie, clients, signals, raise_here))
    rows.append(("append elsewhere -> /ws/events/", clients, percentiles(samples), elsewhere_floor))
    rows.append(("  (signal_raise's own duration)", clients, percentiles(sends), None))
    if sender is not None:
        samples, _ = in_thread(
            partial(stream_series, daphne, cookie, clients, signals, raise_here_from_commit)
        )
        rows.append(
            ("append elsewhere, from its commit", clients, percentiles(samples), elsewhere_floor)
        )
    return rows


def print_rows(rows: list[Row]) -> None:
    print(f"{'series':<44}{'clients':>8}{'p50 ms':>10}{'p95 ms':>10}{'vs floor':>10}")
    for label, clients, (p50, p95), floor in rows:
        ratio = f"{p50 / floor[0]:.2f}x" if floor is not None else ""
        print(f"{label:<44}{clients:>8}{p50:>10.2f}{p95:>10.2f}{ratio:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", type=int, default=60, help="signals per series")
    parser.add_argument("--clients", default="1,100", help="client counts, comma-separated")
    options = parser.parse_args()
    counts = [int(count) for count in options.clients.split(",")]

    settings_dict = connection.settings_dict
    settings_dict.setdefault("TEST", {})
    if connection.vendor == "sqlite":
        settings_dict["TEST"]["NAME"] = str(SCRATCH / "bench-stream.sqlite3")
    else:
        settings_dict["TEST"]["NAME"] = f"test_{settings_dict['NAME']}_bench_stream"
    old_config = setup_databases(verbosity=0, interactive=False)
    daphne = None
    try:
        genome_bootstrap(template="nested", actor="bench")
        operator = factories.operator()
        token = Token.objects.create(user=operator).key
        browser = Client()
        browser.force_login(operator)
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        daphne = Daphne()

        def post(message: str) -> None:
            post_signal(daphne, token, message)

        layer = type(get_channel_layer()).__name__
        print(
            f"database: {connection.vendor}, channel layer: {layer}, "
            f"{options.signals} signals per series"
        )
        sender = LayerSender() if ON_REDIS else None
        try:
            rows = []
            for clients in counts:
                rows += measure(daphne, cookie, clients, options.signals, post, sender)
        finally:
            if sender is not None:
                sender.stop()
        print_rows(rows)
    finally:
        if daphne is not None:
            daphne.stop()
        if ON_REDIS:
            with app.connection_for_write() as broker:
                for queue in ("controllers", "leaves"):
                    broker.default_channel.queue_delete(queue)
        teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    main()
