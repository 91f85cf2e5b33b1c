"""End-to-end directive latency and throughput through a real worker, beside a raw Celery chain.

Runs against a throwaway test database (created and dropped here) of whatever
DATABASE_URL selects, and a broker nobody else reads (a scratch embedded-broker
file, or the REDIS_URL server under a key prefix of its own), so neither the
real ledger nor other people's workers are touched:

    .venv/bin/python bench/directives.py [--directives 100]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/vsm REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/directives.py

It bootstraps the nested organization and starts one Celery worker process
(queues controllers,leaves; concurrency 2, the configured pool: threads on the embedded
broker, prefork on Redis) bound to the test database.
A directive with requires_code_write=true makes five hops:
root → backend-system → backend-coder (echo provider) → backend-system → root; in the
worker they ride two ``vsm.deliver`` messages, the worker running each hop's onward
controller hop itself (VSM_LOCAL_CONTROLLER_HOPS=0 sends all five through the broker).
Printed, as plain tables:

* where the time goes: each hop's handler run in this process (Celery
  publishing patched out) with its SQL statements, transactions and ledger
  events, plus what a hop may also pay in a worker (a result row, a fresh
  database connection, a connection health check);
* p50/p95 end-to-end latency and throughput, one directive at a time and all
  at once, beside the baseline: a chain of five ``vsm.bench.hop`` no-op tasks
  through the same broker and worker, each hop publishing the next. One at a
  time, chains and directives alternate, so both see the same machine load.

The worker inherits this process's environment, so VSM_BROKER_POLLING_INTERVAL
(embedded broker) applies to it; the figures are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from unittest import mock

import django

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

# Everything the run writes (the SQLite test database, the embedded broker's
# file, leaf workspaces) goes to a scratch directory, inherited by the worker.
SCRATCH = Path(tempfile.mkdtemp(prefix="vsm-bench-"))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
os.environ["VSM_VAR_DIR"] = str(SCRATCH)
os.environ["VSM_BROKER_PATH"] = str(SCRATCH / "broker.sqlite3")
os.environ["VSM_WORKSPACE_ROOT"] = str(SCRATCH / "workspaces")
os.environ["VSM_LEAF_QUEUES"] = "shared"
# Production runs without DEBUG; with it Django keeps every query in memory.
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsmsite.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import DEFAULT_DB_ALIAS, connection, connections  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django_celery_results.models import TaskResult  # noqa: E402

from ledger.models import LedgerEvent, LedgerHead  # noqa: E402
from organization.services import genome_bootstrap  # noqa: E402
from tests.support.processes import WorkerProcess, process_env  # noqa: E402
from vsmsite.celery import app  # noqa: E402
from workers.models import Directive, Envelope  # noqa: E402
from workers.services.delivery import envelope_deliver_onward  # noqa: E402
from workers.services.directives import directive_submit  # noqa: E402
from workers.services.transport import CONTROLLER_QUEUE, LEAF_QUEUE  # noqa: E402
from workers.tasks import bench_hop, deliver  # noqa: E402

HOPS = 5  # root → backend-system → backend-coder → backend-system → root
POLL_SECONDS = 0.002  # how often this process looks for finished work
TIMEOUT_SECONDS = 120.0
FINISHED = (Directive.Status.COMPLETED, Directive.Status.FAILED)
ON_REDIS = settings.CELERY_BROKER_URL.startswith("redis")
# On Redis, Celery's queues and the channel layer's groups (the ledger bell) keep
# their names under this prefix, in this process and in the worker, so neither
# meets anybody else's.
KEY_PREFIX = f"vsm-bench-{os.getpid()}:"


def use_key_prefix(prefix: str) -> None:
    options = dict(app.conf.broker_transport_options or {})
    app.conf.broker_transport_options = {**options, "global_keyprefix": prefix}
    layer = cast(dict[str, Any], settings.CHANNEL_LAYERS["default"])
    if "redis" in layer["BACKEND"]:
        layer.setdefault("CONFIG", {})["prefix"] = prefix


if ON_REDIS:
    use_key_prefix(KEY_PREFIX)

# ``celery worker``, after the same use_key_prefix() as above when asked for.
WORKER_BOOT = """
import os, sys
from django.conf import settings
from vsmsite.celery import app
prefix = os.environ.get("VSM_BENCH_KEYPREFIX")
if prefix:
    options = dict(app.conf.broker_transport_options or {})
    app.conf.broker_transport_options = {**options, "global_keyprefix": prefix}
    layer = settings.CHANNEL_LAYERS["default"]
    if "redis" in layer["BACKEND"]:
        layer.setdefault("CONFIG", {})["prefix"] = prefix
app.worker_main(sys.argv[1:])
"""


# -- the worker -----------------------------------------------------------------


@contextmanager
def worker_process() -> Iterator[WorkerProcess]:
    """One real ``celery worker`` on the test database, as tests/support/processes.py starts it."""
    hostname = f"bench-{os.getpid()}@localhost"
    command = [
        *(sys.executable, "-c", WORKER_BOOT, "worker", "--hostname", hostname),
        *("--queues", f"{CONTROLLER_QUEUE},{LEAF_QUEUE}", "--concurrency", "2"),
        *("--pool", settings.CELERY_WORKER_POOL, "--loglevel", "INFO"),
        *("--without-mingle", "--without-gossip"),
    ]
    process = subprocess.Popen(
        command,
        cwd=BASE_DIR,
        env=process_env(**({"VSM_BENCH_KEYPREFIX": KEY_PREFIX} if ON_REDIS else {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    worker = WorkerProcess(process, hostname)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def drop_redis_keys() -> None:
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = list(client.scan_iter(match=f"{KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)


# -- end to end -------------------------------------------------------------------


def submit_directive() -> str:
    return directive_submit(
        title="Add a health-check endpoint",
        metadata={"requires_code_write": "true"},
        origin="bench",
    ).directive.id


def finished_directives(ids: list[str]) -> Iterable[str]:
    return Directive.objects.filter(id__in=ids, status__in=FINISHED).values_list("id", flat=True)


def start_chain() -> str:
    marker = str(uuid.uuid4())  # the id the last hop runs under
    bench_hop.apply_async(args=[HOPS - 1, time.time(), marker], queue=CONTROLLER_QUEUE)
    return marker


def finished_chains(markers: list[str]) -> Iterable[str]:
    done = TaskResult.objects.filter(task_id__in=markers, status="SUCCESS")
    return [str(task_id) for task_id in done.values_list("task_id", flat=True)]


@dataclass
class Series:
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        if fraction == 0.5:
            return statistics.median(ordered)
        return ordered[max(int(len(ordered) * fraction) - 1, 0)]


def burst(
    start: Callable[[], str],
    finished: Callable[[list[str]], Iterable[str]],
    count: int,
    worker: WorkerProcess,
) -> Series:
    """Start ``count`` runs at once; latency is from each start to seeing it finished."""
    begun: dict[str, float] = {}
    first = time.perf_counter()
    for _ in range(count):
        moment = time.perf_counter()
        begun[start()] = moment
    ended: dict[str, float] = {}
    while len(ended) < count:
        done = set(finished([key for key in begun if key not in ended]))
        moment = time.perf_counter()
        ended.update(dict.fromkeys(done, moment))
        if len(ended) < count:
            if moment - first > TIMEOUT_SECONDS or worker.process.poll() is not None:
                raise RuntimeError(
                    f"{count - len(ended)} of {count} runs unfinished after "
                    f"{moment - first:.0f}s; the worker said:\n{worker.output[-4000:]}"
                )
            time.sleep(POLL_SECONDS)
    return Series([(ended[key] - begun[key]) * 1e3 for key in begun], max(ended.values()) - first)


def alternately(count: int, worker: WorkerProcess) -> tuple[Series, Series]:
    """A raw chain, then a directive, each waited for, ``count`` times: both see the same load."""
    chains, directives = Series(), Series()
    for _ in range(count):
        for series, single in (
            (chains, burst(start_chain, finished_chains, 1, worker)),
            (directives, burst(submit_directive, finished_directives, 1, worker)),
        ):
            series.latencies_ms += single.latencies_ms
            series.seconds += single.seconds
    return chains, directives


def database_sessions() -> int | None:
    """Sessions PostgreSQL has seen end on the test database (none on SQLite)."""
    if connection.vendor != "postgresql":
        return None
    time.sleep(1.0)  # a worker's last disconnect reaches the statistics a moment later
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def check_all_completed() -> None:
    failed = Directive.objects.exclude(status=Directive.Status.COMPLETED)
    if failed.exists():
        sample = failed.values_list("status", "result_summary").first()
        raise SystemExit(f"{failed.count()} directives did not complete, e.g. {sample}")


# -- where the time goes ------------------------------------------------------------


class Meter:
    """Counts and times the statements and commits of the default connection."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.commits = 0
        self.sql_seconds = 0.0

    def __call__(self, execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        verb = sql.lstrip().split(None, 1)[0].upper()
        self.statements[verb] += 1
        if verb in ("INSERT", "UPDATE", "DELETE") and not connection.in_atomic_block:
            self.commits += 1  # an autocommitted write is a transaction of its own
        if verb == "SELECT" and " FOR UPDATE" in sql:
            self.statements["lock"] += 1
        if verb in ("UPDATE", "WITH") and "UPDATE ledger_ledgerhead" in sql.replace('"', ""):
            self.statements["ledger append"] += 1  # alone, or the end of one WITH (PostgreSQL)
        started = time.perf_counter()
        try:
            return execute(sql, *args)
        finally:
            self.sql_seconds += time.perf_counter() - started

    @contextmanager
    def measuring(self) -> Iterator[None]:
        real = connections[DEFAULT_DB_ALIAS]
        commit = real.commit

        def counted_commit() -> None:
            started = time.perf_counter()
            commit()
            self.sql_seconds += time.perf_counter() - started
            self.commits += 1

        with mock.patch.object(real, "commit", counted_commit), real.execute_wrapper(self):
            yield


@dataclass
class Hop:
    label: str
    wall_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    # This process's CPU time: Python's share, which the load of a shared machine
    # disturbs less than the wall clock (the database server's work is not in it).
    cpu_ms: list[float] = field(default_factory=list)
    meter: Meter = field(default_factory=Meter)
    events: list[str] = field(default_factory=list)


def measured(hop: Hop, action: Callable[[], object]) -> None:
    head = LedgerHead.objects.get(pk=1).seq
    meter = Meter()
    started, cpu = time.perf_counter(), time.process_time()
    with meter.measuring():
        action()
    hop.wall_ms.append((time.perf_counter() - started) * 1e3)
    hop.cpu_ms.append((time.process_time() - cpu) * 1e3)
    hop.sql_ms.append(meter.sql_seconds * 1e3)
    hop.meter = meter  # the counts are the same every run; keep the last
    hop.events = list(
        LedgerEvent.objects.filter(seq__gt=head).order_by("seq").values_list("kind", flat=True)
    )


def profile_hops(runs: int) -> list[Hop]:
    """Run directives' hops in this process, in order, each as the worker would run it.

    One hop per row: each goes through the (patched) broker here, though a worker runs a
    controller hop's onward controller hop itself (``broker_messages`` counts those)."""
    task = app.tasks[deliver.name]
    outbox: list[tuple[str, str]] = []
    hops: dict[str, Hop] = {}

    def capture(*, envelope_id: str, queue: str) -> None:
        outbox.append((envelope_id, queue))

    with (
        mock.patch("workers.services.transport.envelope_send", side_effect=capture),
        override_settings(VSM_LOCAL_CONTROLLER_HOPS=0),
    ):
        for _ in range(runs):
            hop = hops.setdefault("submit", Hop("directive_submit (web)"))
            measured(hop, submit_directive)
            step = 0
            while outbox:
                envelope_id, queue = outbox.pop(0)
                envelope = Envelope.objects.get(id=envelope_id)
                step += 1
                label = f"{step} {envelope.payload_type[4:]} @ {envelope.target_node_id}"
                # With the queue, as the worker's message carries it (envelope_send).
                run = functools.partial(task.run, envelope_id, queue)
                measured(hops.setdefault(label, Hop(label)), run)
    check_all_completed()
    celery_result = Hop("Celery result row (django-db)")
    reconnect = Hop("DB connect (Celery closes it per task)")
    health_check = Hop("DB health check (CONN_HEALTH_CHECKS)")
    for _ in range(runs):
        # What a worker's first statement of a task costs first when health checks are on
        # and its connection sat idle (vsmsite/celery.py skips it within a second of the
        # last task): one round trip.
        started = time.perf_counter()
        connection.is_usable()
        health_check.wall_ms.append((time.perf_counter() - started) * 1e3)
        health_check.sql_ms.append(health_check.wall_ms[-1])
        measured(celery_result, lambda: app.backend.store_result(str(uuid.uuid4()), "x", "SUCCESS"))
        connection.close()
        started = time.perf_counter()
        connection.ensure_connection()
        reconnect.wall_ms.append((time.perf_counter() - started) * 1e3)
        reconnect.sql_ms.append(reconnect.wall_ms[-1])
    return [*hops.values(), celery_result, reconnect, health_check]


def broker_messages() -> tuple[int, int]:
    """(messages through the broker, hops) of one directive, with the worker's settings,
    handled as by the bench's worker, which consumes both queues."""
    outbox: list[tuple[str, str]] = []
    head = LedgerHead.objects.get(pk=1).seq

    def capture(*, envelope_id: str, queue: str) -> None:
        outbox.append((envelope_id, queue))

    messages = 0
    with mock.patch("workers.services.transport.envelope_send", side_effect=capture):
        submit_directive()
        while outbox:
            envelope_id, queue = outbox.pop(0)
            envelope_deliver_onward(
                envelope_id=envelope_id, worker="bench", queue=queue, serves_controllers=True
            )
            messages += 1
    received = LedgerEvent.objects.filter(seq__gt=head, kind="message_received").count()
    return messages, received


def print_hops(hops: list[Hop], runs: int) -> None:
    print(f"\nWhere the time goes: each hop run in this process, median of {runs} directives")
    columns: tuple[str, ...] = ("wall ms", "SQL ms", "CPU ms", "stmts", "SELECT", "INSERT")
    columns = (*columns, "UPDATE")
    columns = (*columns, "WITH", "locks", "commits")
    print(f"{'hop':<40}" + "".join(f"{c:>8}" for c in columns) + f"{'appends':>9}{'events':>8}")
    totals: Counter[str] = Counter()
    cpu_total = 0.0
    for hop in hops:
        counts = hop.meter.statements
        row = [
            statistics.median(hop.wall_ms),
            statistics.median(hop.sql_ms),
            statistics.median(hop.cpu_ms) if hop.cpu_ms else 0.0,
            sum(n for verb, n in counts.items() if verb not in ("lock", "ledger append")),
            counts["SELECT"],
            counts["INSERT"],
            counts["UPDATE"],
            counts["WITH"],
            counts["lock"],
            hop.meter.commits,
            counts["ledger append"],
            len(hop.events),
        ]
        text = "".join(f"{n:>8.2f}" for n in row[:3]) + "".join(f"{n:>8}" for n in row[3:-2])
        print(f"{hop.label:<40}{text}{row[-2]:>9}{row[-1]:>8}")
        if hop.label[0].isdigit() or hop.label.startswith("directive_submit"):
            totals.update(dict(zip((*columns[3:], "appends", "events"), row[3:], strict=True)))
            cpu_total += row[2]
    print(
        "per directive: "
        + ", ".join(f"{n} {name}" for name, n in totals.items())
        + " (statements include BEGIN and savepoints; locks = SELECT … FOR UPDATE;"
        " WITH = one data-modifying statement, PostgreSQL's ledger append;"
        " commits include autocommitted writes)"
    )
    print(f"CPU time in this process per directive (submit and handlers): {cpu_total:.1f} ms")
    for hop in hops:
        if hop.events:
            print(f"  {hop.label}: {', '.join(hop.events)}")


# -- main -----------------------------------------------------------------------------


def print_series(rows: list[tuple[str, Series]], baseline: Series) -> None:
    print(f"{'series':<44}{'p50 ms':>9}{'p95 ms':>9}{'per s':>8}{'p50 ratio':>11}")
    for label, series in rows:
        p50, p95 = series.percentile(0.5), series.percentile(0.95)
        ratio = p50 / baseline.percentile(0.5)
        print(f"{label:<44}{p50:>9.1f}{p95:>9.1f}{series.per_second:>8.1f}{ratio:>10.2f}x")


def describe_setup(count: int) -> str:
    if ON_REDIS:
        broker = "redis (blocking BRPOP, no polling)"
    else:
        interval = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("polling_interval")
        broker = f"embedded SQLite, polling every {float(str(interval)) * 1e3:g} ms"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sqlite_version()" if connection.vendor == "sqlite" else "SHOW server_version"
        )
        version = cursor.fetchone()[0]
    return (
        f"database: {connection.vendor} {version}; broker: {broker}; worker: 1 process, "
        f"{settings.CELERY_WORKER_POOL} pool, concurrency 2; {count} directives per series; "
        f"DEBUG={settings.DEBUG}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--directives", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--profile-runs", type=int, default=20)
    arguments = parser.parse_args()
    count = arguments.directives
    # A name of its own, so a concurrent test run's database is never dropped.
    connection.settings_dict["TEST"]["NAME"] = (
        str(SCRATCH / "test-db.sqlite3")
        if connection.vendor == "sqlite"
        else f"test_vsm_bench_{os.getpid()}"
    )
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        genome_bootstrap(template="nested", actor="bench")
        print(describe_setup(count))
        hops = profile_hops(arguments.profile_runs)
        print_hops(hops, arguments.profile_runs)
        messages, hop_count = broker_messages()
        with worker_process() as worker:
            alternately(arguments.warmup, worker)
            head, sessions = LedgerHead.objects.get(pk=1).seq, database_sessions()
            chains, directives = alternately(count, worker)
            events, after = LedgerHead.objects.get(pk=1).seq - head, database_sessions()
            chains_at_once = burst(start_chain, finished_chains, count, worker)
            directives_at_once = burst(submit_directive, finished_directives, count, worker)
        check_all_completed()
        print(f"\nEnd to end, {HOPS} hops each; the ratio is against the raw chain one at a time")
        onward = settings.VSM_LOCAL_CONTROLLER_HOPS
        print(
            f"a directive's {hop_count} hops take {messages} broker messages "
            f"(VSM_LOCAL_CONTROLLER_HOPS={onward}"
            + (": a worker runs a hop's onward controller hop itself" if onward else "")
            + f"); the chain's {HOPS} take one each"
        )
        print_series(
            [
                (f"raw chain of {HOPS} vsm.bench.hop, one at a time", chains),
                ("directive, one at a time", directives),
                (f"raw chain, {count} at once", chains_at_once),
                (f"directive, {count} at once", directives_at_once),
            ],
            chains,
        )
        handlers = [hop for hop in hops if hop.label[0].isdigit()]
        gap = directives.percentile(0.5) - chains.percentile(0.5)
        print(
            f"directive p50 - raw chain p50 = {gap:.1f} ms; the {len(handlers)} handlers take "
            f"{sum(statistics.median(hop.wall_ms) for hop in handlers):.1f} ms in this process "
            f"({sum(statistics.median(hop.sql_ms) for hop in handlers):.1f} ms of it in SQL), "
            f"directive_submit {statistics.median(hops[0].wall_ms):.1f} ms"
        )
        print(
            f"throughput at {count} at once: {directives_at_once.per_second:.1f} directives/s "
            f"against {chains_at_once.per_second:.1f} chains/s "
            f"({directives_at_once.per_second / chains_at_once.per_second:.2f}x)"
        )
        print(f"ledger events per directive in the worker: {events / count:.1f}")
        if sessions is not None and after is not None:
            opened = (after - sessions) / (2 * count)  # a chain and a directive per round
            print(f"database sessions per run (chain or directive) in the worker: {opened:.1f}")
    finally:
        connection.close()
        teardown_databases(old_config, verbosity=0)
        if ON_REDIS:
            drop_redis_keys()


if __name__ == "__main__":
    main()
