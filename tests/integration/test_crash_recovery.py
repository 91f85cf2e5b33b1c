"""A worker killed mid-task loses nothing and duplicates nothing.

The leaf takes seconds (scripted latency); its worker gets SIGKILL while the
task runs; a new worker starts; the directive still completes with exactly one
result and one trace, and the ledger verifies. On the embedded broker the dead
worker's claim is released by the next poller; on Redis the message comes back
after the visibility timeout (shortened here).
"""

from __future__ import annotations

import pytest

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.selectors import ledger_verify
from organization.services import genome_apply_patch, genome_bootstrap
from tests.support.organizations import replace_coder
from tests.support.processes import celery_worker, purge_queues, wait_until
from workers.models import Directive, Envelope, Task
from workers.services.directives import directive_submit
from workers.services.leaf import workspace_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SLOW_CODER = replace_coder(
    "slow-coder",
    provider="scripted",
    model="slow",
    metadata={"provider.scripted.latency_ms": "3000"},
)
# Redis hands an unacknowledged message to another worker only after this long.
WORKER_ENV = {"VSM_REDIS_VISIBILITY_TIMEOUT": "6", "VSM_REDIS_RESTORE_INTERVAL": "1"}


def test_a_killed_leaf_worker_loses_nothing_and_duplicates_nothing() -> None:
    genome_bootstrap(template="single", actor="operator:test")
    genome_apply_patch(patch=SLOW_CODER, actor="operator:test")
    purge_queues("controllers", "leaves")

    with celery_worker("controller", queues="controllers", env=WORKER_ENV):
        with celery_worker("doomed", queues="leaves", env=WORKER_ENV) as doomed:
            directive = directive_submit(
                title="Survive a crash", metadata={"requires_code_write": "true"}
            ).directive

            def leaf_started() -> bool:
                # The leaf makes the task's workspace just before it calls its provider.
                task = Task.objects.filter(directive_id=directive.id).first()
                return task is not None and workspace_for(task.id).is_dir()

            wait_until(leaf_started, 60, "the leaf to start the task")
            doomed.kill()
        leaf_envelope = Envelope.objects.get(target_node_id="slow-coder")
        assert leaf_envelope.handled_at is None  # the task died with its worker

        with celery_worker("rescuer", queues="leaves", env=WORKER_ENV):
            wait_until(
                lambda: Directive.objects.get(id=directive.id).is_finished, 90, "the directive"
            )

    directive.refresh_from_db()
    assert directive.status == Directive.Status.COMPLETED
    task = directive.tasks.get()
    assert TaskTrace.objects.filter(task_id=task.id).count() == 1
    results_at_root = LedgerEvent.objects.filter(
        kind=kinds.TASK_RESULT_RECEIVED, task_id=task.id, node_id="root-codebase-system"
    )
    assert results_at_root.count() == 1
    leaf_envelope.refresh_from_db()
    assert leaf_envelope.deliveries == 1  # one claim: the doomed worker's attempt left nothing
    assert leaf_envelope.handled_by.startswith("rescuer")
    assert ledger_verify()[1] is None
