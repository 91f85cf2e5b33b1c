"""Server time of the dashboard's pages at size: /, /nodes/<id>/, a directive's page,
/ledger/, /genome/ and /genome/diff/ at 1,000 and 10,000 nodes.

Runs against a throwaway test database (created and dropped here) of whatever
DATABASE_URL selects, through ``bench/scale.py``'s helpers (nothing else is touched):

    .venv/bin/python bench/pages.py [--sizes 1000,10000] [--events 100000] [--runs 7]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/vsm .venv/bin/python bench/pages.py

For each size N the database is emptied and an organization of N nodes, ten to a parent
(``fan_out_organization``), becomes the champion; then the ledger gets ``--events`` events
(spread over the nodes), ``--traces`` task traces of the leaves with their subtree scopes,
a grant row for each of the first 200 edges this epoch, 500 directives, 50 signals and one
paused subtree; one directive of ``--directive-tasks`` tasks (200 by default: a plan whose
tasks each wait for one or two of the ten before them, most finished, with packets, results,
acceptance output and traces) for ``/directives/<id>/``; and a genome history of
``--versions`` versions (a tenth of them trial candidates), the newest two real patches of the
champion: a batch that removes a subtree, adds a leaf and changes a node's status, whose diff
against its parent /genome/diff/ draws (the older history rows are inserted in bulk with a
placeholder genome: the history never reads the genome column). Then ANALYZE on PostgreSQL.
Each page is requested in-process (``django.test.Client``, logged in) once to warm the
templates and the genome version cache, then ``--runs`` times; the median is printed
beside the aim (<= 100 ms at 1,000 nodes, <= 250 ms at 10,000). The first node page after a
cold version cache (a fresh web process decoding the champion genome), the first diff
(decoding both versions) and the first directive page before its graph's layout is kept are
printed apart.

The figures are in docs/performance.md ("Dashboard pages" and "The genome pages").
"""

from __future__ import annotations

import argparse
import functools
import itertools
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from bench.scale import describe, organization, test_database, timed_ms
from ledger import kinds
from ledger.models import TaskTrace, TaskTraceScope
from ledger.services import EventDraft, ledger_append_many
from organization import selectors as organization_selectors
from organization.genome_history import genome_version_diffs_forget
from organization.models import GenomeVersion, Node
from organization.roles import user_roles_set
from organization.selectors import champion_version_id
from organization.services import genome_apply_patch, subtree_pause
from trials.models import GeneSuggestion, Trial
from workers import task_graph_layout
from workers.models import AlgedonicSignalRecord, Directive, ResourceEpoch, Task
from workers.services.bargaining import current_epoch_key

AIMS_MS = {1000: 100.0, 10000: 250.0}
EVENT_CHUNK = 2000
CANDIDATE_SHARE = 10  # one history row in ten is a trial's candidate


def genome_history(*, versions: int, metasystem: str, leaf: str) -> tuple[str, str]:
    """``versions`` versions in all; returns (older, newer) of the real patch the diff shows."""
    champion = GenomeVersion.objects.defer("genome").get(id=champion_version_id())
    older_rows, now = [], timezone.now()
    parent = champion
    for index in range(max(versions - 3, 0)):
        row = GenomeVersion(
            id=f"bench-version-{index:05d}",
            content_hash=f"sha256:bench{index}",
            parent=parent,
            patch={"kind": "set_node_status", "node_id": leaf, "status": "Probation"},
            actor=f"user:bench-{index % 7}",
            reason=f"bench history {index}",
            created_at=now - timedelta(days=30, minutes=versions - index),
            genome={},
        )
        older_rows.append(row)
        if index % CANDIDATE_SHARE:
            parent = row
    GenomeVersion.objects.bulk_create(older_rows, batch_size=500)
    candidates = [row for index, row in enumerate(older_rows) if index % CANDIDATE_SHARE == 0]
    suggestions = GeneSuggestion.objects.bulk_create(
        GeneSuggestion(
            id=f"bench-suggestion-{row.id}",
            suggested_by_node_id=metasystem,
            target_node_id=leaf,
            source="Other",
            patch=row.patch,
        )
        for row in candidates
    )
    Trial.objects.bulk_create(
        Trial(
            suggestion=suggestion,
            controller_node_id=metasystem,
            state=Trial.State.PRUNED,
            mode="probation",
            base_version=row.parent or champion,
            candidate_version=row,
        )
        for suggestion, row in zip(suggestions, candidates, strict=True)
    )
    genome_apply_patch(
        patch={"kind": "set_node_status", "node_id": leaf, "status": "Probation"},
        actor="user:bench",
        reason="bench: the diff's parent",
    )
    older = champion_version_id() or ""
    genome_apply_patch(
        patch={
            "kind": "batch",
            "patches": [
                {"kind": "remove_subtree", "node_id": metasystem},
                {"kind": "set_node_status", "node_id": leaf, "status": "Shadow"},
                {
                    "kind": "add_child",
                    "parent_id": "root-codebase-system",
                    "child": {"id": "bench-fresh-leaf", "name": "bench fresh leaf"},
                },
            ],
        },
        actor="user:bench",
        reason="bench: the diff drawn",
    )
    return older, champion_version_id() or ""


def big_directive(*, tasks: int, root: str, leaves: list[str], version: str) -> str:
    """A running directive of ``tasks`` planned tasks, most of them done; returns its id."""
    directive = Directive.objects.create(
        title=f"bench directive of {tasks} tasks",
        status=Directive.Status.RUNNING,
        root_node_id=root,
        genome_id=version,
        acceptance=[{"name": "tests", "description": "", "verifier": "make test"}],
    )
    statuses = [Task.Status.COMPLETED] * 6 + [Task.Status.FAILED, Task.Status.ROUTED]
    now = timezone.now()
    rows, trace_rows = [], []
    for index in range(tasks):
        task_id = f"{directive.id[:8]}-task-{index:04d}"
        # Each waits for one or two of the ten tasks before it: long chains that fan in.
        after = sorted({max(0, index - 1 - (index * 7) % 10), max(0, index - 1 - (index * 3) % 10)})
        dependencies = [f"{directive.id[:8]}-task-{d:04d}" for d in after if d < index]
        status = statuses[index % len(statuses)] if index < tasks * 0.9 else Task.Status.WAITING
        leaf = leaves[index % len(leaves)]
        packet = {
            "id": task_id,
            "title": f"bench task {index}",
            "goal": "Change the code so that the benchmark has something to show. " * 8,
            "dependencies": dependencies,
            "acceptance": [{"name": "tests", "description": "", "verifier": "make test"}],
        }
        finished = status in Task.FINISHED
        result = {
            "task_id": task_id,
            "produced_by": leaf,
            "status": "Completed" if status == Task.Status.COMPLETED else "Failed",
            "summary": "done " * 100,
            "artifacts": [
                {"kind": "model_output", "content": "output " * 200},
                {
                    "kind": "acceptance_check",
                    "content": "ok\n" * 200,
                    "metadata": {"name": "tests", "passed": "true"},
                },
            ],
        }
        rows.append(
            Task(
                id=task_id,
                directive=directive,
                title=f"bench task {index}",
                role="implementation",
                packet=packet,
                dependencies=dependencies,
                status=status,
                assigned_node_id=leaf if status != Task.Status.WAITING else "",
                executed_by=leaf if finished else "",
                result=result if finished else None,
                result_summary="done" if finished else "",
            )
        )
        if finished:
            trace_rows.append(
                TaskTrace(
                    task_id=task_id,
                    directive_id=directive.id,
                    genome_id=version,
                    assigned_node_id=leaf,
                    started_at=now,
                    completed_at=now,
                    latency_ms=900,
                    outcome_score=1.0,
                )
            )
    Task.objects.bulk_create(rows, batch_size=500)
    TaskTrace.objects.bulk_create(trace_rows, batch_size=500)
    return directive.id


def fill(*, events: int, traces: int, directive_tasks: int) -> dict[str, str]:
    """Everything but the nodes; returns the node ids the pages are measured at."""
    nodes = list(
        Node.objects.order_by("position").values_list("id", "kind", "ancestor_ids", "depth")
    )
    leaves = [(node_id, ancestors) for node_id, kind, ancestors, _depth in nodes if kind == "leaf"]
    version = champion_version_id() or ""
    spread = itertools.cycle(nodes)
    for start in range(0, events, EVENT_CHUNK):
        drafts = []
        for _ in range(min(EVENT_CHUNK, events - start)):
            node_id, _kind, ancestors, _depth = next(spread)
            drafts.append(
                EventDraft(
                    kind=kinds.MESSAGE_PUBLISHED,
                    actor="bench",
                    payload={"queue": "controllers", "note": "bench"},
                    node_id=node_id,
                    responsible_ancestor_ids=tuple(ancestors),
                    genome_id=version,
                )
            )
        ledger_append_many(drafts=drafts)
    now = timezone.now()
    leaf_cycle = itertools.cycle(leaves)
    rows = []
    for index in range(traces):
        node_id, ancestors = next(leaf_cycle)
        started = now - timedelta(seconds=index)
        rows.append(
            TaskTrace(
                task_id=f"bench-task-{index}",
                genome_id=version,
                assigned_node_id=node_id,
                responsible_ancestor_ids=ancestors,
                started_at=started,
                completed_at=started,
                input_tokens=900,
                output_tokens=300,
                latency_ms=1200,
                outcome_score=1.0 if index % 4 else -1.0,
            )
        )
    TaskTrace.objects.bulk_create(rows, batch_size=2000)
    TaskTraceScope.objects.bulk_create(
        (
            TaskTraceScope(
                trace=trace, node_id=node_id, distance=distance, started_at=trace.started_at
            )
            for trace in rows
            for distance, node_id in enumerate(
                [trace.assigned_node_id, *trace.responsible_ancestor_ids]
            )
        ),
        batch_size=5000,
    )
    key = current_epoch_key()
    edges = [(ancestors[0], node_id) for node_id, _k, ancestors, _d in nodes if ancestors][:200]
    ResourceEpoch.objects.bulk_create(
        ResourceEpoch(
            epoch_key=key,
            controller_node_id=parent,
            requester_node_id=child,
            allocation_count=index % 7 + 1,
            allocated_tokens=1000 * (index % 13 + 1),
            used_tokens=700 * (index % 13 + 1),
        )
        for index, (parent, child) in enumerate(edges)
    )
    Directive.objects.bulk_create(
        Directive(
            title=f"bench directive {index}",
            status=Directive.Status.RUNNING if index % 10 == 0 else Directive.Status.COMPLETED,
            root_node_id=nodes[0][0],
            genome_id=version,
        )
        for index in range(500)
    )
    AlgedonicSignalRecord.objects.bulk_create(
        AlgedonicSignalRecord(
            source="Ci", valence="Pain", severity=6, target_node_id=nodes[i][0], raised_by="bench"
        )
        for i in range(50)
    )
    metasystems = [node_id for node_id, kind, _a, _d in nodes if kind == "metasystem"]
    # The first metasystem the overview folds (its children sit below the third level).
    folded = next(n for n, kind, _a, depth in nodes if kind == "metasystem" and depth == 2)
    paused = metasystems[len(metasystems) // 2]
    subtree_pause(
        node_id=paused,
        signal_id="bench-signal",
        paused_by=nodes[0][0],
        reason="bench",
        severity=6,
        require_human_confirmation=False,
    )
    directive_id = big_directive(
        tasks=directive_tasks,
        root=nodes[0][0],
        leaves=[node_id for node_id, _ancestors in leaves[:20]],
        version=version,
    )
    if connection.vendor == "postgresql":
        # As autovacuum would have by now on a live database: without statistics on the
        # freshly bulk-loaded tables the planner sorts every scope of the root (measured:
        # 125 ms for a trace page instead of 4 ms).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {
        "root": nodes[0][0],
        "a metasystem at depth 1": metasystems[1],
        "a leaf": leaves[len(leaves) // 2][0],
        "folded": folded,
        "directive": directive_id,
    }


def measure(
    size: int, *, events: int, traces: int, directive_tasks: int, runs: int, versions: int
) -> dict[str, float]:
    started = time.perf_counter()
    organization(size)
    at = fill(events=events, traces=traces, directive_tasks=directive_tasks)
    # A metasystem the diff removes (not the paused one, nor where the node pages look).
    metasystems = list(
        Node.objects.filter(kind="metasystem", depth=2)
        .order_by("-position")
        .values_list("id", flat=True)[:1]
    )
    leaf = Node.objects.filter(kind="leaf").order_by("position").values_list("id", flat=True)[0]
    older, newer = genome_history(versions=versions, metasystem=metasystems[0], leaf=leaf)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # the history's tables too, as autovacuum would
    print(f"  built {size} nodes: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS.append("testserver")
    client = Client()
    operator = get_user_model().objects.create_user("bench-operator", password="x")
    user_roles_set(username=operator.username, roles=["operator"], actor="bench")
    client.force_login(operator)

    def get(url: str) -> None:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)

    urls = {"GET /": "/", "GET / with a folded subtree opened": f"/?expand={at.pop('folded')}"}
    directive_id = at.pop("directive")
    directive_url = f"/directives/{directive_id}/"
    urls[f"GET /directives/<{directive_tasks} tasks>/"] = directive_url
    urls[f"GET /directives/<{directive_tasks} tasks>/?task=<one>"] = (
        f"{directive_url}?task={directive_id[:8]}-task-0100"
    )
    urls["GET /directives/"] = "/directives/"
    for label, node_id in at.items():
        urls[f"GET /nodes/<{label}>/"] = f"/nodes/{node_id}/"
    urls["GET /nodes/<root>/?outcome=failed&page=3"] = f"/nodes/{at['root']}/?outcome=failed&page=3"
    urls[f"GET /genome/ ({versions} versions)"] = "/genome/"
    urls["GET /genome/?page=20&candidates=1"] = "/genome/?page=20&candidates=1"
    urls["GET /genome/diff/ (a subtree removed, ...)"] = f"/genome/diff/?from={older}&to={newer}"
    urls["GET /ledger/"] = "/ledger/"
    urls["GET /ledger/?kind=…&before=<middle>"] = (
        f"/ledger/?kind={kinds.MESSAGE_PUBLISHED}&before={max(events // 2, 1)}"
    )
    urls["GET /ledger/?seq=<first>"] = "/ledger/?seq=1"
    figures: dict[str, float] = {}
    # A fresh web process: the champion genome is not decoded yet.
    organization_selectors._version_cache.clear()
    figures["GET /nodes/<root>/, cold version cache"] = timed_ms(
        lambda: get(urls["GET /nodes/<root>/"])
    )
    organization_selectors._version_cache.clear()
    genome_version_diffs_forget()
    figures["GET /genome/diff/, cold version cache"] = timed_ms(
        lambda: get(f"/genome/diff/?from={older}&to={newer}")
    )
    # A fresh web process: the directive graph's layout is not kept yet.
    task_graph_layout.layered_dag_cached.cache_clear()
    figures[f"GET /directives/<{directive_tasks} tasks>/, cold layout"] = timed_ms(
        lambda: get(directive_url)
    )
    for label, url in urls.items():
        get(url)  # warm
        figures[label] = statistics.median(
            timed_ms(functools.partial(get, url)) for _ in range(runs)
        )

    def uncached_diff() -> None:
        genome_version_diffs_forget()  # the versions stay decoded; the diff is computed again
        get(f"/genome/diff/?from={older}&to={newer}")

    figures["GET /genome/diff/, diff not cached"] = statistics.median(
        timed_ms(uncached_diff) for _ in range(runs)
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--traces", type=int, default=20_000)
    parser.add_argument("--directive-tasks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--versions", type=int, default=1000)
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes.split(",")]
    with test_database():
        print(describe())
        print(
            f"{arguments.events} ledger events, {arguments.traces} traces; "
            f"medians of {arguments.runs}"
        )
        columns = {
            size: measure(
                size,
                events=arguments.events,
                traces=arguments.traces,
                directive_tasks=arguments.directive_tasks,
                runs=arguments.runs,
                versions=arguments.versions,
            )
            for size in sizes
        }
    print(f"\n{'server time, ms':<48}" + "".join(f"{f'{size} nodes':>14}" for size in sizes))
    for label in next(iter(columns.values())):
        print(f"{label:<48}" + "".join(f"{columns[size][label]:>14.1f}" for size in sizes))
    aims = "".join(f"{f'<= {AIMS_MS[size]:.0f}' if size in AIMS_MS else '':>14}" for size in sizes)
    print(f"{'aim (every warm page)':<48}{aims}")
    for size in sizes:
        if size not in AIMS_MS:
            continue
        worst = max(value for label, value in columns[size].items() if "cold" not in label)
        verdict = "met" if worst <= AIMS_MS[size] else "MISSED"
        print(
            f"  {size} nodes: slowest warm page {worst:.1f} ms, "
            f"aim {AIMS_MS[size]:.0f} ms: {verdict}"
        )


if __name__ == "__main__":
    main()
