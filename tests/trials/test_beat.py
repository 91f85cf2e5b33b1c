"""Audits on beat: the task, and the schedules beat_sync declares from the champion."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from ledger.services import task_trace_record
from organization.genome import AddChild, Batch, LeafOperationSpec, RemoveSubtree, ViableNode
from organization.genome import nested as nested_genome
from organization.services import genome_apply_patch, genome_bootstrap, genome_bootstrap_from
from tests.ledger.factories import TaskTraceFactory
from trials import tasks
from trials.models import AuditRun, Trial

pytestmark = pytest.mark.django_db

ROOT_AUDIT = "vsm.trials.audit:root-codebase-system"
SYSTEM_AUDIT = "vsm.trials.audit:backend-system"


@pytest.fixture
def nested() -> None:
    genome_bootstrap(template="nested", actor="operator:test")


def beat_sync(*args: str) -> str:
    out = StringIO()
    call_command("beat_sync", *args, stdout=out)
    return out.getvalue()


def audit_rows() -> dict[str, PeriodicTask]:
    return {row.name: row for row in PeriodicTask.objects.filter(task="vsm.trials.audit")}


def test_the_beat_task_audits_the_controller_and_queues_its_suggestion(nested: None) -> None:
    for index in range(5):
        task_trace_record(trace=TaskTraceFactory.build(merged=index >= 2))

    run_id = tasks.audit.run(controller_node_id="backend-system")

    run = AuditRun.objects.get(id=run_id)
    assert (run.trigger, run.controller_node_id, run.failed_count) == ("beat", "backend-system", 2)
    assert Trial.objects.get().suggestion.audit_run == run


def test_the_beat_task_skips_a_controller_that_is_gone(nested: None) -> None:
    assert tasks.audit.run(controller_node_id="ghost").startswith("skipped:")
    assert AuditRun.objects.count() == 0


def test_beat_sync_creates_one_audit_schedule_per_audited_metasystem(nested: None) -> None:
    output = beat_sync()

    rows = audit_rows()
    assert set(rows) == {ROOT_AUDIT, SYSTEM_AUDIT}
    system = rows[SYSTEM_AUDIT]
    assert (system.queue, system.enabled) == ("controllers", True)
    assert json.loads(system.kwargs) == {"controller_node_id": "backend-system"}
    assert (system.interval.every, system.interval.period) == (3600, "seconds")
    assert f"{SYSTEM_AUDIT}: every 3600s, enabled on queue controllers (created)" in output
    # The workers' own periodic task is still declared.
    assert PeriodicTask.objects.filter(name="vsm.epochs.release_deferred", enabled=True).exists()


def test_a_node_with_audits_disabled_or_its_own_interval_is_declared_so(db: None) -> None:
    genome = nested_genome()
    genome.nodes["root-codebase-system"].system_3_star.audit_enabled = False
    genome.nodes["backend-system"].system_3_star.audit_interval_seconds = 900
    genome_bootstrap_from(genome=genome, actor="operator:test", label="custom audits")

    beat_sync()

    rows = audit_rows()
    assert set(rows) == {SYSTEM_AUDIT}
    assert rows[SYSTEM_AUDIT].interval.every == 900


def test_beat_sync_is_idempotent(nested: None) -> None:
    beat_sync()
    before = {row.name: (row.interval_id, row.enabled, row.kwargs) for row in audit_rows().values()}

    output = beat_sync()

    after = {row.name: (row.interval_id, row.enabled, row.kwargs) for row in audit_rows().values()}
    assert after == before
    assert PeriodicTask.objects.filter(task="vsm.trials.audit").count() == 2
    assert f"{SYSTEM_AUDIT}: every 3600s, enabled on queue controllers (synced)" in output
    assert IntervalSchedule.objects.filter(every=3600, period="seconds").count() == 1


def test_beat_sync_keeps_an_interval_and_enabled_flag_edited_in_the_admin(nested: None) -> None:
    beat_sync()
    row = PeriodicTask.objects.get(name=SYSTEM_AUDIT)
    # An operator, in the admin: every 10 minutes, and the root's audit switched off.
    row.interval = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
    row.queue = "somewhere-else"
    row.save()
    PeriodicTask.objects.filter(name=ROOT_AUDIT).update(enabled=False)

    output = beat_sync()

    row.refresh_from_db()
    assert (row.interval.every, row.interval.period, row.enabled) == (10, "minutes", True)
    assert row.queue == "controllers"  # the task, queue and kwargs stay in line with the code
    assert PeriodicTask.objects.get(name=ROOT_AUDIT).enabled is False
    assert (
        f"{SYSTEM_AUDIT}: every 600s, enabled on queue controllers (kept (edited in the admin); "
        "declared every 3600s, enabled)" in output
    )
    assert f"{ROOT_AUDIT}: every 3600s, disabled" in output

    beat_sync("--reset")

    row.refresh_from_db()
    assert (row.interval.every, row.interval.period) == (3600, "seconds")
    assert PeriodicTask.objects.get(name=ROOT_AUDIT).enabled is True


def test_beat_sync_disables_the_schedule_of_a_controller_that_is_gone(nested: None) -> None:
    beat_sync()
    genome_apply_patch(patch=RemoveSubtree(node_id="backend-system"), actor="operator:test")

    output = beat_sync()

    # backend-system is gone, and the root, childless now, is a leaf: neither is audited.
    rows = audit_rows()
    assert (rows[SYSTEM_AUDIT].enabled, rows[ROOT_AUDIT].enabled) == (False, False)
    assert (
        f"{SYSTEM_AUDIT}: disabled (backend-system is no longer an audited metasystem of the "
        "champion)" in output
    )
    assert "still disabled" in beat_sync()


def test_a_schedule_disabled_by_beat_sync_comes_back_with_its_controller(nested: None) -> None:
    beat_sync()
    genome_apply_patch(patch=RemoveSubtree(node_id="backend-system"), actor="operator:test")
    beat_sync()
    backend = ViableNode.metasystem("backend-system", id="backend-system")
    coder = ViableNode.leaf("backend-coder", LeafOperationSpec.coding(), id="backend-coder")
    genome_apply_patch(
        patch=Batch(
            patches=[
                AddChild(parent_id="root-codebase-system", child=backend),
                AddChild(parent_id="backend-system", child=coder),
            ]
        ),
        actor="operator:test",
    )

    output = beat_sync()

    # Disabled by beat_sync, not by an operator: enabled again.
    assert all(row.enabled for row in audit_rows().values())
    assert f"{SYSTEM_AUDIT}: every 3600s, enabled on queue controllers (synced)" in output


def test_beat_reads_the_synced_row_as_the_audit_task_with_its_kwargs_and_queue(
    nested: None,
) -> None:
    from django_celery_beat.schedulers import ModelEntry

    from vsmsite.celery import app

    beat_sync()

    entry = ModelEntry(PeriodicTask.objects.get(name=SYSTEM_AUDIT), app=app)

    assert entry.task == "vsm.trials.audit"
    assert entry.kwargs == {"controller_node_id": "backend-system"}
    assert entry.options["queue"] == "controllers"
    assert entry.schedule.run_every.total_seconds() == 3600
