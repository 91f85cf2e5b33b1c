"""With VSM_LEAF_QUEUES=per-node each leaf has its own queue: a machine can serve chosen leaves."""

from __future__ import annotations

import time

import pytest
from pytest_django.fixtures import Settings

from organization.services import genome_bootstrap
from tests.support.processes import WorkerProcess, celery_worker, purge_queues
from workers.models import Directive, Envelope
from workers.services.directives import directive_submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_worker_serving_only_one_leafs_queue_executes_that_leafs_tasks(
    settings: Settings,
) -> None:
    settings.VSM_LEAF_QUEUES = "per-node"
    genome_bootstrap(template="single", actor="operator:test")
    queue = "leaf.primary-code-service"
    purge_queues("controllers", queue)

    with celery_worker(
        "dedicated", queues=f"controllers,{queue}", env={"VSM_LEAF_QUEUES": "per-node"}
    ):
        directive = directive_submit(
            title="Dedicated machine", metadata={"requires_code_write": "true"}
        ).directive
        deadline = time.monotonic() + 60
        while not Directive.objects.get(id=directive.id).is_finished:
            assert time.monotonic() < deadline, "directive did not finish"
            time.sleep(0.1)

    assert Directive.objects.get(id=directive.id).status == Directive.Status.COMPLETED
    assert Envelope.objects.get(target_node_id="primary-code-service").queue == queue


def test_controller_hops_run_onward_only_in_workers_that_serve_the_controllers() -> None:
    """A leaf-only worker hands its result to the broker; the controllers' worker runs the
    system's hop and the root's after it without another broker message."""
    genome_bootstrap(template="nested", actor="operator:test")
    purge_queues("controllers", "leaves")

    with (
        celery_worker("metasystems", queues="controllers") as metasystems,
        celery_worker("leaves-only", queues="leaves") as leaves,
    ):
        directive = directive_submit(
            title="Two machines", metadata={"requires_code_write": "true"}
        ).directive
        deadline = time.monotonic() + 60
        while not Directive.objects.get(id=directive.id).is_finished:
            assert time.monotonic() < deadline, metasystems.output[-3000:] + leaves.output[-3000:]
            time.sleep(0.1)

    assert Directive.objects.get(id=directive.id).status == Directive.Status.COMPLETED
    handled_by = dict(Envelope.objects.values_list("target_node_id", "handled_by").distinct())
    assert handled_by == {
        "root-codebase-system": metasystems.hostname,
        "backend-system": metasystems.hostname,
        "backend-coder": leaves.hostname,
    }

    def received(worker: WorkerProcess) -> int:
        return sum("Task vsm.deliver[" in line and "] received" in line for line in worker.lines)

    # Five hops: the directive (root, then backend-system onward) and the leaf's result
    # (backend-system, then the root onward) are the metasystems' two broker messages.
    assert (received(metasystems), received(leaves)) == (2, 1)
