"""A driver for fault tests whose database is not the test database (a PostgreSQL cluster
the test restarts): ``python -m tests.support.outbox_driver <command>`` with
``DATABASE_URL`` and the broker in the environment. Each command prints one JSON line.

* ``setup``: bootstrap the single-leaf organization with a scripted leaf that takes 100 ms;
* ``submit N``: submit N directives;
* ``sweep TIMEOUT``: run the outbox sweeper every second until every directive has finished,
  riding out database errors (the database may be down), or TIMEOUT seconds pass;
* ``report``: what happened: statuses, traces and results per task, the ledger check.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import django


def setup() -> dict[str, Any]:
    from organization.services import genome_apply_patch, genome_bootstrap
    from tests.integration.test_broker_restart import STEADY_CODER

    genome_bootstrap(template="single", actor="operator:test")
    genome_apply_patch(patch=STEADY_CODER, actor="operator:test")
    return {"ok": True}


def submit(count: int) -> dict[str, Any]:
    from workers.services.directives import directive_submit

    ids = [
        directive_submit(
            title=f"Survive a database restart {n}", metadata={"requires_code_write": "true"}
        ).directive.id
        for n in range(count)
    ]
    return {"ids": ids}


def _unfinished() -> int:
    from workers.models import Directive

    return Directive.objects.exclude(
        status__in=[Directive.Status.COMPLETED, Directive.Status.FAILED]
    ).count()


def sweep(timeout: float) -> dict[str, Any]:
    from django.db import DatabaseError, close_old_connections

    from workers.services.outbox import outbox_sweep

    deadline = time.monotonic() + timeout
    resent = errors = 0
    while time.monotonic() < deadline:
        try:
            if _unfinished() == 0:
                return {"finished": True, "resent": resent, "database_errors": errors}
            resent += len(outbox_sweep().sent)
        except DatabaseError:
            errors += 1
            close_old_connections()
        time.sleep(1)
    return {"finished": False, "resent": resent, "database_errors": errors}


def report() -> dict[str, Any]:
    from django.db.models import Count

    from ledger import kinds
    from ledger.models import LedgerEvent, TaskTrace
    from ledger.selectors import ledger_verify
    from workers.models import Directive, Envelope, Task

    traces = TaskTrace.objects.values("task_id").annotate(n=Count("id"))
    results = (
        LedgerEvent.objects.filter(kind=kinds.TASK_RESULT_RECEIVED, node_id="root-codebase-system")
        .values("task_id")
        .annotate(n=Count("id"))
    )
    return {
        "statuses": sorted(Directive.objects.values_list("status", flat=True)),
        "tasks": Task.objects.count(),
        "traces_per_task": sorted(row["n"] for row in traces),
        "results_per_task": sorted(row["n"] for row in results),
        "settled": LedgerEvent.objects.filter(kind=kinds.DIRECTIVE_COMPLETED).count(),
        "resent_envelopes": Envelope.objects.filter(resends__gt=0).count(),
        "ledger": ledger_verify()[1] or "ok",
    }


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsmsite.settings")
    django.setup()
    command, *args = argv
    if command == "setup":
        out = setup()
    elif command == "submit":
        out = submit(int(args[0]))
    elif command == "sweep":
        out = sweep(float(args[0]))
    elif command == "report":
        out = report()
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
