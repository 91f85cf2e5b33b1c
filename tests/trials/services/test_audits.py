"""A System 3* audit of a controller's subtree: counted traces, findings, queued trials."""

from __future__ import annotations

import pytest

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.services import task_trace_record
from organization.genome import LeafOperationSpec, ViableNode, add_child, nested
from organization.models import GenomeVersion
from organization.selectors import champion_version_id, genome_version
from organization.services import genome_bootstrap, genome_bootstrap_from
from tests.ledger.factories import TaskTraceFactory
from trials.errors import AuditRefused
from trials.models import AuditRun, GeneSuggestion, Trial
from trials.services.audits import audit_completion, audit_run

pytestmark = pytest.mark.django_db

ROOT, SYSTEM, CODER = "root-codebase-system", "backend-system", "backend-coder"
REVIEWER = "review-probation-leaf"


@pytest.fixture
def champion() -> GenomeVersion:
    version, _ = genome_bootstrap(template="nested", actor="operator:test")
    return version


def seed(total: int, failed: int, **fields: object) -> list[TaskTrace]:
    """``total`` traces of backend-coder's work, the first ``failed`` of them not merged."""
    return [
        task_trace_record(trace=TaskTraceFactory.build(merged=index >= failed, **fields))
        for index in range(total)
    ]


def audit(controller: str = SYSTEM) -> AuditRun:
    return audit_run(controller_node_id=controller, trigger=AuditRun.Trigger.COMMAND, actor="t")


def kinds_of(run: AuditRun) -> list[str]:
    return list(
        LedgerEvent.objects.filter(correlation_id=run.id)
        .order_by("seq")
        .values_list("kind", flat=True)
    )


def test_an_audit_below_five_traces_finds_nothing_and_queues_nothing(champion) -> None:
    seeded = seed(4, 4)

    run = audit()

    assert (run.trace_count, run.failed_count, run.findings) == (4, 4, [])
    assert sorted(run.trace_ids) == sorted(trace.id for trace in seeded)
    assert run.genome_id == champion.id and run.completed_at is not None
    assert Trial.objects.count() == 0
    assert kinds_of(run) == [kinds.AUDIT_STARTED, kinds.AUDIT_COMPLETED]


def test_two_failures_in_five_queue_one_reviewer_trial_and_leave_the_champion(champion) -> None:
    seeded = seed(5, 2)

    run = audit()

    assert (run.trace_count, run.failed_count) == (5, 2)
    [finding] = run.findings
    assert finding["title"] == "High child failure ratio"
    assert finding["related_nodes"] == [CODER]
    assert sorted(finding["related_tasks"]) == sorted(trace.task_id for trace in seeded)
    [trial] = Trial.objects.all()
    assert (trial.state, trial.controller_node_id, trial.mode) == ("queued", SYSTEM, "probation")
    assert (trial.max_tasks, trial.max_token_budget, trial.requires_approval) == (10, 100_000, True)
    assert trial.suggestion.audit_run == run
    assert trial.suggestion.source == GeneSuggestion.Source.SYSTEM3_STAR_AUDIT
    candidate = genome_version(version_id=trial.candidate_version_id)
    [reviewer] = [node for node in candidate.nodes.values() if node.name == REVIEWER]
    assert reviewer.parent_id == SYSTEM and reviewer.status.value == "Probation"
    # The champion is untouched: same version, no reviewer.
    assert champion_version_id() == champion.id
    champion_names = {node.name for node in genome_version(version_id=champion.id).nodes.values()}
    assert REVIEWER not in champion_names
    assert kinds_of(run) == [
        kinds.AUDIT_STARTED,
        kinds.GENE_SUGGESTION_CREATED,
        kinds.TRIAL_QUEUED,
        kinds.AUDIT_COMPLETED,
    ]
    completed = audit_completion(audit_run=run)
    assert completed is not None
    assert completed["suggestion_ids"] == [trial.id]
    assert (completed["trace_count"], completed["failed_count"]) == (5, 2)
    assert completed["failure_ratio"] == 0.4


def test_the_audit_names_the_traces_it_counted(champion) -> None:
    seeded = seed(5, 2)
    failed_ids = [trace.id for trace in seeded[:2]]

    run = audit()

    assert sorted(run.trace_ids) == sorted(trace.id for trace in seeded)
    [suggestion] = GeneSuggestion.objects.all()
    assert suggestion.evidence[0] == "failure_ratio=0.400, failed=2, traces=5"
    listed = suggestion.evidence[1].removeprefix("failed_trace_ids=").split(",")
    assert sorted(listed) == sorted(failed_ids)


def test_traces_outside_the_subtree_are_not_counted(champion) -> None:
    seed(5, 5, assigned_node_id="frontend-coder", responsible_ancestor_ids=["frontend", ROOT])
    seed(5, 0)

    run = audit()

    assert (run.trace_count, run.failed_count, run.findings) == (5, 0, [])
    assert audit(ROOT).failed_count == 5  # the root sees both subtrees


def test_a_second_audit_does_not_queue_a_second_reviewer(champion) -> None:
    seed(5, 2)
    audit()

    again = audit()

    assert len(again.findings) == 1
    assert Trial.objects.count() == 1
    completed = audit_completion(audit_run=again)
    assert completed is not None
    assert completed["suggestion_ids"] == []
    [reason] = completed["withheld"]
    assert "already proposes one at backend-system" in reason


def test_an_ended_reviewer_trial_does_not_block_a_new_one(champion) -> None:
    seed(5, 2)
    audit()
    Trial.objects.update(state=Trial.State.PRUNED)

    audit()

    assert Trial.objects.filter(state=Trial.State.QUEUED).count() == 1


def test_a_controller_that_already_has_a_reviewer_gets_no_second(db: None) -> None:
    genome = nested()
    reviewer = ViableNode.leaf("second-opinion", LeafOperationSpec.reviewer(), id="second-opinion")
    add_child(genome, SYSTEM, reviewer)
    genome_bootstrap_from(genome=genome, actor="operator:test", label="with a reviewer")
    seed(5, 2)

    run = audit()

    assert len(run.findings) == 1
    assert Trial.objects.count() == 0
    completed = audit_completion(audit_run=run)
    assert completed is not None
    assert completed["withheld"] == [
        "no reviewer suggested: backend-system already has reviewing child second-opinion"
    ]


@pytest.mark.parametrize(
    ("controller", "problem"),
    [
        ("ghost", "'ghost' is not a node of the champion genome"),
        (CODER, "'backend-coder' is a System 1 leaf, not a metasystem"),
    ],
)
def test_auditing_a_node_that_is_not_a_metasystem_is_refused_and_writes_nothing(
    champion, controller: str, problem: str
) -> None:
    seed(5, 2)
    events_before = LedgerEvent.objects.count()

    with pytest.raises(AuditRefused, match=problem):
        audit(controller)

    assert AuditRun.objects.count() == 0
    assert LedgerEvent.objects.count() == events_before
