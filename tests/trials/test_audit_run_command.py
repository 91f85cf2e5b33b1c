"""``manage.py audit_run``: audit now, print what was counted, found and queued."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ledger.services import task_trace_record
from organization.services import genome_bootstrap
from tests.ledger.factories import TaskTraceFactory
from trials.models import AuditRun, Trial

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("audit_run", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def nested() -> None:
    genome_bootstrap(template="nested", actor="operator:test")


def seed(total: int, failed: int) -> None:
    for index in range(total):
        task_trace_record(trace=TaskTraceFactory.build(merged=index >= failed))


def test_it_prints_the_counts_the_finding_and_the_queued_trial(nested: None) -> None:
    seed(5, 2)

    output = run("--controller", "backend-system")

    [trial] = Trial.objects.all()
    assert "audit of backend-system" in output
    assert "5 traces, 2 failed/reverted (ratio 0.400)" in output
    assert (
        "finding: High child failure ratio (severity 6): "
        "2 failed/reverted traces across 5 observed traces" in output
    )
    assert (
        f"queued trial {trial.id}: add_child review-probation-leaf under backend-system "
        "(probation, approval required)" in output
    )
    assert AuditRun.objects.get().trigger == AuditRun.Trigger.COMMAND


def test_without_a_controller_it_audits_every_audited_metasystem(nested: None) -> None:
    seed(2, 0)

    output = run()

    assert "audit of root-codebase-system" in output
    assert "audit of backend-system" in output
    assert output.count("no findings") == 2
    assert sorted(AuditRun.objects.values_list("controller_node_id", flat=True)) == [
        "backend-system",
        "root-codebase-system",
    ]


def test_a_second_run_says_why_it_queued_no_second_reviewer(nested: None) -> None:
    seed(5, 2)
    run("--controller", "backend-system")

    output = run("--controller", "backend-system")

    assert "withheld: no reviewer suggested: trial" in output
    assert Trial.objects.count() == 1


@pytest.mark.parametrize(
    ("controller", "message"),
    [
        ("ghost", "'ghost' is not a node of the champion genome"),
        ("backend-coder", "'backend-coder' is a System 1 leaf, not a metasystem"),
    ],
)
def test_it_fails_clearly_for_a_node_that_cannot_be_audited(
    nested: None, controller: str, message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        run("--controller", controller)
    assert AuditRun.objects.count() == 0


def test_it_fails_clearly_before_bootstrap() -> None:
    with pytest.raises(CommandError, match="org_bootstrap"):
        run()
