"""What the organization's size costs: 10 to 10,000 nodes, each figure beside the 10-node one.

Runs against a throwaway test database (created and dropped here) of whatever
DATABASE_URL selects; nothing else is touched (Celery publishing is patched out,
every handler runs in this process):

    .venv/bin/python bench/scale.py [--sizes 10,100,1000,10000] [--runs 5] [--rounds 3]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/vsm .venv/bin/python bench/scale.py

For each size N the database is emptied and an organization of N nodes, ten to a
parent (``fan_out_organization``: metasystems down to coding leaves), becomes the
champion. Printed as plain tables, medians of ``--runs`` (fewer at 10,000 nodes
when a run takes seconds), with the ratio to the 10-node figure:

* the genome: reading the champion's stored JSON and decoding it cold
  (``genome_from_json``), and the cached lookup (``genome_version``);
* a small patch: ``genome_apply_patch`` of a ``set_node_status``, with its SQL
  statements and the Node rows it wrote;
* the pages that list nodes, server time in-process (``django.test.Client``):
  ``GET /alarms/`` logged in and ``GET /api/nodes/`` with a token (its first page);
* a directive: ``directive_submit`` with ``requires_code_write=true``, then each
  delivered envelope's handler (``vsm.deliver``'s body, given the envelope id and
  queue its message carries) in order, as bench/directives.py runs them. A
  directive's hops grow with the depth (down to the first leaf and back), so the
  table shows the cost per directive and per hop, beside the same through the
  3-node ``nested`` template measured in the same run: ``--rounds`` rounds of
  ``--runs`` directives each, nested and every size up to 1,000 in turn, forwards
  then backwards (the organization built afresh each time), the median over all of
  them; at 10,000 nodes one round.

The figures are in docs/performance.md ("Scale").
"""

from __future__ import annotations

import argparse
import atexit
import functools
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import django

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

SCRATCH = Path(tempfile.mkdtemp(prefix="vsm-bench-scale-"))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
os.environ["VSM_VAR_DIR"] = str(SCRATCH)
os.environ["VSM_BROKER_PATH"] = str(SCRATCH / "broker.sqlite3")
os.environ["VSM_WORKSPACE_ROOT"] = str(SCRATCH / "workspaces")
os.environ["VSM_LEAF_QUEUES"] = "shared"
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsmsite.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from ledger.immutability import drop_guard, install_guard  # noqa: E402
from organization.genome import (  # noqa: E402
    OrganizationalGenome,
    fan_out_organization,
    genome_from_json,
    nested,
)
from organization.models import GenomeVersion, Node  # noqa: E402
from organization.roles import user_roles_set  # noqa: E402
from organization.selectors import champion_version_id, genome_version  # noqa: E402
from organization.services import genome_apply_patch  # noqa: E402
from vsmsite.celery import app  # noqa: E402
from workers.models import Directive  # noqa: E402
from workers.services.directives import directive_submit  # noqa: E402
from workers.tasks import deliver  # noqa: E402

NESTED = "nested"
NODE_WRITES = ("INSERT INTO", "UPDATE", "DELETE FROM")


# -- organizations ---------------------------------------------------------------------


def bootstrap(genome: OrganizationalGenome, label: str) -> None:
    try:
        from organization.services import genome_bootstrap_from
    except ImportError:  # a tree from before genome_bootstrap_from (the "before" figures)
        from organization.genome import TEMPLATES
        from organization.services import genome_bootstrap

        TEMPLATES[label] = lambda: genome
        genome_bootstrap(template=label, actor="bench")
        return
    genome_bootstrap_from(genome=genome, actor="bench", label=label)


def empty_database() -> None:
    """Back to an empty schema; the ledger's append-only guard is lifted only for the flush."""
    drop_guard(connection)
    try:
        call_command("flush", interactive=False, verbosity=0)
    finally:
        install_guard(connection)


def organization(size: int | str) -> None:
    empty_database()
    if size == NESTED:
        bootstrap(nested(), NESTED)
    else:
        bootstrap(fan_out_organization(int(size)), f"fan-out-{size}")


# -- measuring -------------------------------------------------------------------------


def timed_ms(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1e3


def median_ms(action: Callable[[], object], runs: int) -> float:
    return statistics.median(timed_ms(action) for _ in range(runs))


@dataclass
class Figures:
    """One organization's figures, by row label (ms unless the label says otherwise)."""

    size: int | str
    values: dict[str, float] = field(default_factory=dict)


def genome_figures(figures: Figures, runs: int) -> None:
    version_id = champion_version_id()
    assert version_id is not None
    stored: list[Any] = []

    def read() -> None:
        stored[:] = [GenomeVersion.objects.values_list("genome", flat=True).get(id=version_id)]

    figures.values["read the stored genome (JSON column)"] = median_ms(read, runs)
    figures.values["decode it cold (genome_from_json)"] = median_ms(
        lambda: genome_from_json(stored[0], check=False), runs
    )
    genome_version(version_id=version_id)  # warm
    lookups = 1000
    figures.values["cached lookup genome_version, µs"] = (
        timed_ms(lambda: [genome_version(version_id=version_id) for _ in range(lookups)])
        * 1e3
        / lookups
    )


def patch_figures(figures: Figures, runs: int) -> None:
    target = (
        Node.objects.filter(kind=Node.Kind.LEAF)
        .order_by("-position")
        .values_list("id", flat=True)[0]
    )
    statuses = iter(["Probation", "Active"] * runs)
    samples: list[float] = []
    statements: list[str] = []

    def counted(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        statements.append(sql)
        return execute(sql, *args)

    for _ in range(runs):
        patch: dict[str, Any] = {"kind": "set_node_status", "node_id": target}
        patch["status"] = next(statuses)
        statements.clear()
        with connection.execute_wrapper(counted):
            samples.append(timed_ms(functools.partial(genome_apply_patch, patch=patch, actor="b")))
    rows = sum(
        1 for sql in statements if sql.startswith(NODE_WRITES) and '"organization_node"' in sql
    )
    figures.values["set_node_status patch (genome_apply_patch)"] = statistics.median(samples)
    figures.values["  its SQL statements, count"] = len(statements)
    figures.values["  its Node row writes, statements"] = rows


def page_figures(figures: Figures, runs: int) -> None:
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS.append("testserver")  # the test client's host
    user = get_user_model().objects.create_user("bench-operator", password="x")
    user_roles_set(username=user.username, roles=["operator"], actor="bench")
    browser, api = Client(), Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user)}")
    browser.force_login(user)
    sizes: dict[str, int] = {}

    def get(client: Client, url: str) -> None:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        sizes[url] = len(response.content)

    for client, url in ((browser, "/alarms/"), (api, "/api/nodes/")):
        get(client, url)  # warm: templates, the version cache
        figures.values[f"GET {url}"] = median_ms(functools.partial(get, client, url), runs)
        figures.values[f"  {url} response, KB"] = sizes[url] / 1024


def directive_samples(size: int | str, runs: int) -> tuple[list[float], int]:
    """``runs`` directives through the organization built now (one more first, to warm the
    caches): each one's ms, and its hops."""
    task = app.tasks[deliver.name]
    outbox: list[tuple[str, str]] = []

    def capture(*, envelope_id: str, queue: str) -> None:
        outbox.append((envelope_id, queue))

    def one_directive() -> int:
        hops = 0
        directive_submit(
            title="Add a health-check endpoint",
            metadata={"requires_code_write": "true"},
            origin="bench",
        )
        while outbox:
            # With the queue, as the worker's message carries it (envelope_send).
            task.run(*outbox.pop(0))
            hops += 1
        return hops

    samples: list[float] = []
    hops = 0
    # Every hop through the (patched) broker, so each is counted: a worker would run a
    # controller hop's onward controller hop itself, which changes no handler's cost.
    with (
        mock.patch("workers.services.transport.envelope_send", side_effect=capture),
        override_settings(VSM_LOCAL_CONTROLLER_HOPS=0),
    ):
        for _ in range(runs + 1):  # the first one warms the caches
            started = time.perf_counter()
            hops = one_directive()
            samples.append((time.perf_counter() - started) * 1e3)
    failed = Directive.objects.exclude(status=Directive.Status.COMPLETED).count()
    if failed:
        raise SystemExit(f"{failed} directives did not complete at size {size}")
    return samples[1:], hops


def directive_figures(figures: Figures, samples: list[float], hops: int) -> None:
    figures.values["directive: submit + every hop's handler"] = statistics.median(samples)
    figures.values["  its hops, count"] = hops
    figures.values["  per hop"] = statistics.median(samples) / hops


def measure(size: int | str, runs: int, directives: dict[int | str, list[float]]) -> Figures:
    """Everything at ``size``; its directives' samples are added to ``directives``."""
    started = time.perf_counter()
    organization(size)
    figures = Figures(size)
    figures.values["build + bootstrap, s"] = time.perf_counter() - started
    if size != NESTED:
        few = runs if small(size) else max(runs // 2, 2)
        genome_figures(figures, few)
        patch_figures(figures, few)
        page_figures(figures, runs)
    if not small(size):  # the smaller ones in alternating rounds (main)
        samples, hops = directive_samples(size, max(runs // 2, 2))
        directives.setdefault(size, []).extend(samples)
        figures.values["  its hops, count"] = hops
    print(f"  measured {size}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return figures


def small(size: int | str) -> bool:
    return size == NESTED or int(size) <= 1000


def directive_round(
    size: int | str, runs: int, figures: Figures, directives: dict[int | str, list[float]]
) -> None:
    """A round of directives at ``size``, on an organization built afresh."""
    organization(size)
    samples, figures.values["  its hops, count"] = directive_samples(size, runs)
    directives.setdefault(size, []).extend(samples)


# -- printing --------------------------------------------------------------------------


def print_table(title: str, rows: list[str], columns: list[Figures], baseline: Figures) -> None:
    print(f"\n{title}")
    header = "".join(f"{c.size!s:>12}{'ratio':>9}" for c in columns)
    print(f"{'':<44}{header}")
    for row in rows:
        cells = []
        for column in columns:
            value, base = column.values.get(row), baseline.values.get(row)
            if value is None:
                cells.append(f"{'':>21}")
                continue
            ratio = f"{value / base:.2f}" if base else ""
            cells.append(f"{value:>12.2f}{ratio:>9}")
        print(f"{row:<44}{''.join(cells)}")


def describe() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sqlite_version()" if connection.vendor == "sqlite" else "SHOW server_version"
        )
        version = cursor.fetchone()[0]
    return f"database: {connection.vendor} {version}; in-process, Celery publishing patched out"


@contextmanager
def test_database() -> Iterator[None]:
    connection.settings_dict["TEST"]["NAME"] = (
        str(SCRATCH / "test-db.sqlite3")
        if connection.vendor == "sqlite"
        else f"test_vsm_bench_scale_{os.getpid()}"
    )
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        yield
    finally:
        connection.close()
        teardown_databases(old_config, verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of directives, nested and each size up to 1,000 in turn",
    )
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes.split(",")]
    directives: dict[int | str, list[float]] = {}
    with test_database():
        print(describe())
        nested_figures = measure(NESTED, arguments.runs, directives)
        columns = [measure(size, arguments.runs, directives) for size in sizes]
        # The directive's ratio is to the nested organization in the same run: rounds
        # alternate them (sizes up to 1,000; a 10,000-node build takes a minute), forwards
        # and backwards, so neither side always comes right after the largest organization's
        # flush or on a quieter stretch of a shared machine.
        by_size = {column.size: column for column in [nested_figures, *columns]}
        order = [size for size in by_size if small(size)]
        for round_ in range(arguments.rounds):
            for size in order[::-1] if round_ % 2 else order:
                directive_round(size, arguments.runs, by_size[size], directives)
    for column in [nested_figures, *columns]:
        hops = int(column.values["  its hops, count"])
        directive_figures(column, directives[column.size], hops)
    base = columns[0]
    genome_rows = [
        "read the stored genome (JSON column)",
        "decode it cold (genome_from_json)",
        "cached lookup genome_version, µs",
        "build + bootstrap, s",
    ]
    print_table(f"The genome (nodes; ratio to {base.size} nodes)", genome_rows, columns, base)
    patch_rows = [
        "set_node_status patch (genome_apply_patch)",
        "  its SQL statements, count",
        "  its Node row writes, statements",
    ]
    print_table("A small patch", patch_rows, columns, base)
    page_rows = ["GET /alarms/", "  /alarms/ response, KB", "GET /api/nodes/"]
    page_rows += ["  /api/nodes/ response, KB"]
    print_table("Pages that list nodes (server time in-process)", page_rows, columns, base)
    directive_rows = [
        "directive: submit + every hop's handler",
        "  its hops, count",
        "  per hop",
    ]
    print_table(
        "A directive through the organization (ratio to the 3-node nested template)",
        directive_rows,
        [nested_figures, *columns],
        nested_figures,
    )


if __name__ == "__main__":
    main()
