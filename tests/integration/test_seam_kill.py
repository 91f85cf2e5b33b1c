"""A process killed between its commit and its publish loses nothing and duplicates nothing.

Two seams: the process that accepted a directive dies as it sends the directive to the root
(its envelope is committed, never sent: the directive would stay ``accepted`` forever); a
leaf's pool process dies as it publishes its result (its claim and trace are committed, the
broker redelivers its message, which answers "duplicate", and the result was never sent).
The outbox sweeper (run here every second with a short grace period, as beat would every
30 s) sends both, and the directive completes with one result and one trace.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.selectors import ledger_verify
from organization.services import genome_bootstrap
from tests.support.processes import BASE_DIR, celery_worker, process_env, purge_queues
from workers.models import Directive, Envelope
from workers.services.outbox import outbox_sweep

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def sweep_until(directive_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not Directive.objects.get(id=directive_id).is_finished:
        assert time.monotonic() < deadline, f"directive {directive_id} not finished"
        outbox_sweep()
        time.sleep(1)


@override_settings(VSM_OUTBOX_GRACE_SECONDS=2)
def test_kills_at_the_seam_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    genome_bootstrap(template="single", actor="operator:test")
    purge_queues("controllers", "leaves")

    submitter = subprocess.run(
        [sys.executable, "-m", "tests.support.seam", "submit", "Die at the seam"],
        cwd=BASE_DIR,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert submitter.returncode == -signal.SIGKILL, submitter.stdout + submitter.stderr
    directive = Directive.objects.get()
    assert directive.status == Directive.Status.ACCEPTED  # committed, never sent
    assert Envelope.objects.get().handled_at is None

    died = tmp_path / "leaf-died"
    with (
        celery_worker("controller", queues="controllers"),
        celery_worker(
            "leaf",
            queues="leaves",
            module="tests.support.seam",
            env={"VSM_TEST_DIE_ONCE": str(died)},
        ),
    ):
        sweep_until(directive.id, timeout=90)

    assert died.exists(), "the leaf's pool process never died at its publish"
    directive.refresh_from_db()
    assert directive.status == Directive.Status.COMPLETED
    task = directive.tasks.get()
    assert TaskTrace.objects.filter(task_id=task.id).count() == 1
    assert (
        LedgerEvent.objects.filter(
            kind=kinds.TASK_RESULT_RECEIVED, task_id=task.id, node_id="root-codebase-system"
        ).count()
        == 1
    )
    leaf_envelope = Envelope.objects.get(target_node_id="primary-code-service")
    assert leaf_envelope.deliveries == 1
    # The root's envelope was sent again by the sweeper; the leaf's result by the sweeper or
    # by the leaf message's redelivery, which sends on what the dead process left unsent.
    assert Envelope.objects.filter(resends__gt=0, target_node_id="root-codebase-system").exists()
    assert ledger_verify()[1] is None
