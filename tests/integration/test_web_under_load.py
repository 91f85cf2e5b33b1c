"""The web process under load keeps its database connections bounded (PostgreSQL).

daphne runs each HTTP request's sync code on a thread of its own; a connection kept
open for reuse (``CONN_MAX_AGE``) in such a thread outlives the request, and 20
clients used to exhaust PostgreSQL's ``max_connections`` ("too many clients
already", a 500). The count printed is what ``pg_stat_activity`` saw for the test
database, daphne's connections only.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from organization.services import genome_bootstrap
from tests import factories
from tests.support.processes import daphne_server, purge_queues
from workers.models import Directive

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CLIENTS = 20
DIRECTIVES = 200
# The web process's bound on requests in flight at once (VSM_WEB_MAX_REQUESTS).
MAX_REQUESTS = 8


def _dsn() -> str:
    settings = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=settings["NAME"],
        user=settings.get("USER") or "",
        password=settings.get("PASSWORD") or "",
        host=settings.get("HOST") or "127.0.0.1",
        port=str(settings.get("PORT") or 5432),
    )


class ConnectionCounter:
    """Samples, every 10 ms, the connections to the test database other than this process's."""

    def __init__(self, exclude_pids: set[int]) -> None:
        self.db = psycopg.connect(_dsn(), autocommit=True)
        self.exclude = [*exclude_pids, self.db.info.backend_pid]
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def count(self) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND NOT (pid = ANY(%s))",
            (self.exclude,),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.count())
            time.sleep(0.01)

    def __enter__(self) -> ConnectionCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def post_directive(url: str, token: str, number: int) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{url}/api/directives/",
        data=json.dumps({"title": f"Load directive {number}"}).encode(),
        headers={
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"load-{number}",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), ""
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode(errors="replace")[:300]


def test_200_directives_from_20_clients_are_all_accepted_within_a_bounded_pool(
    capsys: Any,
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("measures PostgreSQL connections (set DATABASE_URL=postgres://...)")
    genome_bootstrap(template="nested", actor="operator:test")
    token = Token.objects.create(user=factories.admin()).key
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own_pid = int(cursor.fetchone()[0])

    env = {"VSM_WEB_MAX_REQUESTS": str(MAX_REQUESTS)}
    with daphne_server(env=env) as server:
        counter = ConnectionCounter({own_pid})
        started = time.monotonic()
        with counter, ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            answers = list(
                pool.map(lambda n: post_directive(server.url, token, n), range(DIRECTIVES))
            )
        elapsed = time.monotonic() - started
        # Give a connection left behind by a finished request the time to show.
        time.sleep(1.0)
        after = counter.count()
        counter.db.close()
        output = server.output

    with capsys.disabled():
        print(
            f"\n{DIRECTIVES} directives from {CLIENTS} clients: "
            f"{sum(status == 201 for status, _ in answers)} accepted in {elapsed:.1f} s; "
            f"web connections to PostgreSQL: peak {counter.peak}, 1 s after the load {after}"
        )
    purge_queues("controllers", "leaves")
    failures = [answer for answer in answers if answer[0] != 201]
    assert failures == [], (failures[:5], output[-3000:])
    assert Directive.objects.count() == DIRECTIVES
    assert counter.peak <= MAX_REQUESTS + 1  # + the websockets' shared thread
    assert after == 0
