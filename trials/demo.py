"""The whole evolution cycle, shown (``python manage.py evolution_demo``).

A scripted world in which structure matters: the champion's coding leaf succeeds on 30% of
its tasks; with a reviewing leaf beside it, on ``30% + effect`` (the scripted provider's
``peer_kind`` option, decided per task by a hash of the seed and the task id, so both arms
face the same luck on the same task). The cycle then runs through the real services and a
real worker and beat:

1. baseline directives on the champion; most of them fail;
2. a System 3* audit of the root, which finds the failure ratio and queues its suggestion,
   a probationary reviewer leaf, as a canary trial;
3. beat's trials tick activates it; the operator approves its traffic;
4. directives keep coming; about half of them go to the candidate genome, the rest to the
   champion, and both arms' traces accumulate;
5. after every trace the decision rule compares the arms; the trial ends promoted (the
   reviewer helps), pruned (it hurts), or inconclusive (no difference shows in its budget);
6. ``ledger_verify`` checks the whole chain.

The functions here drive the services and print through ``say``; the command starts the
processes around them, and the integration test runs the same cycle on PostgreSQL + Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import Permission, User

from ledger.selectors import ledger_verify
from organization.genome import ModelSpec, OrganizationalGenome, single_coder
from trials.domain.audit import RuleBasedSystem3StarAuditor
from trials.models import Trial
from workers.domain.homeostat import TrialMode
from workers.models import Directive
from workers.services.directives import directive_submit

ROOT = "root-codebase-system"
CODER = "primary-code-service"
OPERATOR = "demo-operator"

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoWorld:
    seed: str = "evolution-demo"
    base_rate: float = 0.3
    effect: float = 0.5
    canary_share_basis_points: int = 5000
    trial_max_tasks: int = 80

    @property
    def rate_with_reviewer(self) -> float:
        return min(1.0, max(0.0, self.base_rate + self.effect))


@dataclass
class DemoOutcome:
    trial: Trial | None
    baseline_failed: int
    baseline_total: int
    directives: int
    ledger_ok: bool


def demo_genome(world: DemoWorld) -> OrganizationalGenome:
    """The single-coder organization with its coder scripted as the world says, and the root's
    System 3* audit suggesting bounded canaries."""
    genome = single_coder()
    coder = genome.nodes[CODER]
    coder.model = ModelSpec(provider="scripted", model="scripted")
    coder.metadata.update(
        {
            "provider.scripted.success_rate": f"{world.base_rate:g}",
            "provider.scripted.seed": world.seed,
            "provider.scripted.peer_kind": "Reviewing",
            "provider.scripted.success_rate_with_peer": f"{world.rate_with_reviewer:g}",
            "provider.scripted.input_tokens": "400",
            "provider.scripted.output_tokens": "100",
            "provider.scripted.latency_ms": "20",
        }
    )
    return genome


def demo_auditor(world: DemoWorld) -> RuleBasedSystem3StarAuditor:
    """The reference audit rule, suggesting a canary on half the traffic with room for
    enough traces to decide (the reference's 10-task probation can rarely decide anything)."""
    return RuleBasedSystem3StarAuditor(
        trial_mode=TrialMode.CANARY,
        traffic_share_basis_points=world.canary_share_basis_points,
        max_tasks=world.trial_max_tasks,
        max_token_budget=None,
        requires_approval=True,
    )


def submit(count: int, *, label: str) -> list[str]:
    """Submit ``count`` code directives; returns their ids."""
    return [
        directive_submit(
            title=f"{label} {index + 1}: fix a failing endpoint",
            metadata={"requires_code_write": "true", "task_class": "code"},
        ).directive.id
        for index in range(count)
    ]


def wait_finished(ids: list[str], *, timeout: float) -> list[Directive]:
    deadline = time.monotonic() + timeout
    while True:
        directives = list(Directive.objects.filter(id__in=ids))
        if all(directive.is_finished for directive in directives):
            return directives
        if time.monotonic() > deadline:
            waiting = sum(not directive.is_finished for directive in directives)
            raise TimeoutError(f"{waiting} of {len(ids)} directives unfinished after {timeout}s")
        time.sleep(0.2)


def wait_for(condition: Callable[[], object], *, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(0.2)


def demo_operator() -> User:
    user, _ = User.objects.get_or_create(username=OPERATOR, defaults={"is_staff": True})
    user.user_permissions.add(Permission.objects.get(codename="approve_trial"))
    return User.objects.get(pk=user.pk)  # a fresh instance: permissions are cached


def run_cycle(
    *,
    world: DemoWorld,
    say: Say,
    baseline: int = 12,
    batch: int = 10,
    max_directives: int = 400,
    timeout: float = 120.0,
    tick: Callable[[], object] | None = None,
) -> DemoOutcome:
    """Run the cycle on the organization in the database (bootstrapped with
    ``demo_genome``), with a worker serving it. ``tick`` runs the trials' periodic step
    in process when no beat is running."""
    from trials.services.approvals import trial_approve
    from trials.services.audits import audit_run

    say(f"1. baseline: {baseline} directives on the champion")
    done = wait_finished(submit(baseline, label="baseline"), timeout=timeout)
    failed = sum(directive.status == Directive.Status.FAILED for directive in done)
    say(f"   {failed} of {baseline} failed")

    say("2. System 3* audit of the root")
    run = audit_run(
        controller_node_id=ROOT, trigger="command", actor="demo", auditor=demo_auditor(world)
    )
    say(f"   counted {run.trace_count} traces, {run.failed_count} failed")
    for finding in run.findings:
        say(f"   finding: {finding.get('title')} (severity {finding.get('severity')})")
    trial = Trial.objects.filter(suggestion__audit_run=run).first()
    if trial is None:
        say("   the audit suggested nothing; the cycle ends here")
        return DemoOutcome(None, failed, baseline, baseline, ledger_verify()[1] is None)
    say(
        f"   suggestion queued as trial {trial.id[:8]} ({trial.mode}, share "
        f"{trial.traffic_share_basis_points} bp, at most {trial.max_tasks} tasks): "
        f"{trial.suggestion.hypothesis}"
    )

    say("3. activation")
    if tick is not None:
        tick()
    wait_for(
        lambda: Trial.objects.filter(pk=trial.pk).exclude(state=Trial.State.QUEUED).exists(),
        timeout=timeout,
        what="the trials tick to activate the trial",
    )
    trial.refresh_from_db()
    say(f"   trial {trial.id[:8]} is {trial.state} at {trial.controller_node_id}")
    if trial.awaiting_operator:
        trial_approve(trial_id=trial.id, user=demo_operator(), reason="demo: let it run")
        say(f"   {OPERATOR} approved its traffic")

    say("4. both arms accumulate")
    sent = baseline
    while sent < max_directives:
        wait_finished(submit(batch, label="trial"), timeout=timeout)
        sent += batch
        if tick is not None:
            tick()
        trial.refresh_from_db()
        say(
            f"   {sent - baseline:4d} directives: candidate {trial.candidate_traces} traces, "
            f"champion {trial.champion_traces}; {trial.verdict or 'continue'}"
        )
        if trial.state != Trial.State.ACTIVE:
            break

    say("5. the rule's verdict")
    numbers = trial.evaluation.get("numbers", {})
    arms = numbers.get("arms", {})
    for name in ("candidate", "champion"):
        arm = arms.get(name, {})
        low, high = arm.get("wilson", [None, None])
        say(
            f"   {name}: {arm.get('successes')}/{arm.get('n')} succeeded "
            f"(Wilson {_pct(low)} to {_pct(high)})"
        )
    difference = numbers.get("difference", {})
    say(
        f"   gain {_pct(difference.get('estimate'))}, anytime-valid bounds "
        f"{_pct(difference.get('lower'))} to {_pct(difference.get('upper'))}"
    )
    say(f"   trial {trial.state}: {trial.reason}")
    if trial.state == Trial.State.PROMOTED:
        say(f"   champion is now version {str(trial.promoted_version_id)[:8]}")

    say("6. ledger_verify")
    count, problem = ledger_verify()
    say(f"   {count} events, chain {'ok' if problem is None else problem}")
    return DemoOutcome(trial, failed, baseline, sent, problem is None)


def _pct(value: object) -> str:
    return "?" if not isinstance(value, int | float) else f"{value * 100:.0f}%"
