"""A PostgreSQL restart mid-run loses no directive and duplicates nothing.

The test runs its own PostgreSQL cluster (initdb into a temporary directory, another port)
and restarts it while workers are delivering: deliveries that meet the database down fail
with OperationalError and are retried with backoff (``vsm.deliver``), the sweeper sends what
waited, and every directive completes with one result and one trace per task, the ledger
verified. The broker is a redis-server of the test's own on the PostgreSQL + Redis stack,
the pass's own RabbitMQ vhost on the RabbitMQ pass (``make test-rabbitmq`` empties it first),
the embedded broker (in a temporary directory) on the embedded default. Everything runs in
subprocesses against that cluster (``tests.support.outbox_driver``): the test database is
not involved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from tests.support.processes import BASE_DIR, celery_worker
from tests.support.servers import PostgresServer, postgres_server, redis_server

pytestmark = pytest.mark.slow

DIRECTIVES = 30


@contextmanager
def stack() -> Iterator[tuple[PostgresServer, dict[str, str]]]:
    """The cluster, and the environment of every process: it, and a broker of the test's own."""
    with ExitStack() as resources:
        postgres = resources.enter_context(postgres_server())
        var_dir = resources.enter_context(tempfile.TemporaryDirectory(prefix="vsm-var-"))
        env = {
            "DATABASE_URL": postgres.url,
            "VSM_VAR_DIR": var_dir,
            "VSM_OUTBOX_GRACE_SECONDS": "3",
        }
        broker = os.environ.get("CELERY_BROKER_URL", "")
        if broker.startswith("amqp"):
            env.update(REDIS_URL="", CELERY_BROKER_URL=broker)
        elif os.environ.get("REDIS_URL"):
            redis = resources.enter_context(redis_server())
            env.update(REDIS_URL=redis.url, CELERY_BROKER_URL=redis.url)
        else:
            env.update(REDIS_URL="", CELERY_BROKER_URL="embedded://localhost")
        yield postgres, env


def run(env: dict[str, str], *args: str, timeout: float = 300) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}


def driver(env: dict[str, str], *args: str, timeout: float = 300) -> dict[str, Any]:
    return run(env, "-m", "tests.support.outbox_driver", *args, timeout=timeout)


def test_a_postgresql_restart_mid_run_loses_no_directive_and_duplicates_nothing() -> None:
    with stack() as (postgres, env):
        run(env, "manage.py", "migrate", "--no-input", timeout=600)
        driver(env, "setup")
        with (
            celery_worker("controller", queues="controllers", env=env),
            celery_worker("leaf", queues="leaves", env=env) as leaf,
        ):
            driver(env, "submit", str(DIRECTIVES))
            time.sleep(1)  # work in flight
            postgres.stop("fast")  # every connection is cut
            time.sleep(5)
            postgres.start()
            swept = driver(env, "sweep", "180", timeout=240)
            retried = "retry: Retry in" in leaf.output
        report = driver(env, "report")

    assert swept["finished"], (swept, report)
    assert report["statuses"] == ["completed"] * DIRECTIVES
    assert report["tasks"] == DIRECTIVES
    assert report["traces_per_task"] == [1] * DIRECTIVES  # no task lost, none traced twice
    assert report["results_per_task"] == [1] * DIRECTIVES
    assert report["settled"] == DIRECTIVES
    assert report["ledger"] == "ok"
    resent = report["resent_envelopes"]
    print(f"postgresql restart: {swept}, a leaf delivery retried: {retried}, {resent} resent")
