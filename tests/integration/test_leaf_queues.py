"""With VSM_LEAF_QUEUES=per-node each leaf has its own queue: a machine can serve chosen leaves."""

from __future__ import annotations

import time

import pytest
from pytest_django.fixtures import Settings

from organization.services import genome_bootstrap
from tests.support.processes import celery_worker, purge_queues
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
