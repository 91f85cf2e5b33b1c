"""Evolution's records: gene suggestions, the trials that try them, operators' approvals and
System 3* audit runs (docs/rules/trials.md).

Every write goes through ``trials.services``: one service call, one transaction, its ledger
event. A trial's live routing policy is ``organization.models.LiveTrial``, opened and closed
with the trial's state; here the database itself allows at most one ``active`` trial per
controller as well (``one_active_trial_per_controller``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ledger.chain import new_id
from organization.models import GenomeVersion

ID_LENGTH = 200


class TrialMode(models.TextChoices):
    SHADOW = "shadow"
    PROBATION = "probation"
    CANARY = "canary"
    DIRECT = "direct"


class AuditRun(models.Model):
    """One System 3* audit of a controller's subtree: what it counted and what it found."""

    class Trigger(models.TextChoices):
        BEAT = "beat"
        COMMAND = "command"
        AUDIT_CHANNEL = "audit_channel"
        API = "api"

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    controller_node_id = models.CharField(max_length=ID_LENGTH, db_index=True)
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    trace_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    trace_ids = models.JSONField(default=list, blank=True, help_text="The traces it counted.")
    findings = models.JSONField(default=list, blank=True)
    genome_id = models.CharField(max_length=ID_LENGTH, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"audit of {self.controller_node_id} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class GeneSuggestion(models.Model):
    """A proposed genome patch with its hypothesis, evidence and safety limits."""

    class Source(models.TextChoices):
        SYSTEM3_STAR_AUDIT = "System3StarAudit"
        SYSTEM4_FUTURE_PROBE = "System4FutureProbe"
        SYSTEM1_RESOURCE_BARGAIN = "System1ResourceBargain"
        SYSTEM2_COORDINATION_SIGNAL = "System2CoordinationSignal"
        ALGEDONIC_SIGNAL = "AlgedonicSignal"
        THREE_FOUR_HOMEOSTAT = "ThreeFourHomeostat"
        EVOLUTION_GENERATION = "system3_evolution_generation"
        OPERATOR = "Operator"
        OTHER = "Other"

    id = models.CharField(max_length=ID_LENGTH, primary_key=True, default=new_id)
    suggested_by_node_id = models.CharField(max_length=ID_LENGTH)
    target_node_id = models.CharField(max_length=ID_LENGTH)
    source = models.CharField(max_length=64, choices=Source.choices)
    patch = models.JSONField()
    evidence = models.JSONField(default=list, blank=True)
    hypothesis = models.TextField(blank=True)
    trial_mode = models.CharField(
        max_length=16, choices=TrialMode.choices, default=TrialMode.PROBATION
    )
    safety_limits = models.JSONField(default=dict, blank=True)
    measurement_plan = models.JSONField(default=dict, blank=True)
    rollback_plan = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    audit_run = models.ForeignKey(
        AuditRun, null=True, blank=True, on_delete=models.PROTECT, related_name="suggestions"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.source} suggestion {self.id[:8]} for {self.target_node_id}"


class Trial(models.Model):
    """A bounded trial of one suggestion: its candidate genome, limits, evidence, decision.

    The trial's id is its suggestion's id, as the trial tags on routed work carry it.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        ACTIVE = "active"
        PROMOTED = "promoted"
        PRUNED = "pruned"
        REJECTED = "rejected"
        FROZEN = "frozen"
        INCONCLUSIVE = "inconclusive"
        ROLLED_BACK = "rolled_back"

    ENDED = (
        State.PROMOTED,
        State.PRUNED,
        State.REJECTED,
        State.FROZEN,
        State.ROLLED_BACK,
    )

    class Watch(models.TextChoices):
        NONE = ""
        WATCHING = "watching"
        PASSED = "passed"
        ROLLED_BACK = "rolled_back"

    suggestion = models.OneToOneField(
        GeneSuggestion, primary_key=True, on_delete=models.PROTECT, related_name="trial"
    )
    controller_node_id = models.CharField(max_length=ID_LENGTH, db_index=True)
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.QUEUED, db_index=True
    )
    mode = models.CharField(max_length=16, choices=TrialMode.choices)
    base_version = models.ForeignKey(GenomeVersion, on_delete=models.PROTECT, related_name="+")
    candidate_version = models.ForeignKey(GenomeVersion, on_delete=models.PROTECT, related_name="+")
    # Limits (docs/rules/trials.md, "Routing modes").
    requires_approval = models.BooleanField(default=False)
    approved_at = models.DateTimeField(
        null=True, blank=True, help_text="When an operator approved the trial's traffic."
    )
    traffic_share_basis_points = models.PositiveIntegerField(null=True, blank=True)
    max_tasks = models.PositiveIntegerField(null=True, blank=True)
    max_token_budget = models.PositiveBigIntegerField(null=True, blank=True)
    max_files_touched = models.PositiveIntegerField(null=True, blank=True)
    allowed_task_classes = models.JSONField(default=list, blank=True)
    # The decision rule's settings, fixed when the trial is queued (pre-registered).
    alpha = models.FloatField(default=0.05, help_text="One-sided false-promotion rate.")
    indifference_margin = models.FloatField(
        default=0.05, help_text="A success-rate gain smaller than this is not worth promoting."
    )
    min_traces_per_arm = models.PositiveIntegerField(default=20)
    max_traces_per_arm = models.PositiveIntegerField(default=200)
    token_margin = models.FloatField(
        default=0.25, help_text="Candidate's mean tokens may exceed the champion's by this share."
    )
    latency_margin = models.FloatField(
        default=0.5, help_text="Candidate's mean latency may exceed the champion's by this share."
    )
    deadline = models.DateTimeField(null=True, blank=True)
    watch_tasks = models.PositiveIntegerField(
        default=20, help_text="Tasks watched after a promotion before it is kept."
    )
    # Counters and the latest evaluation.
    routed_tasks = models.PositiveIntegerField(default=0)
    consumed_tokens = models.PositiveBigIntegerField(default=0)
    candidate_traces = models.PositiveIntegerField(default=0)
    champion_traces = models.PositiveIntegerField(default=0)
    verdict = models.CharField(max_length=32, blank=True)
    evaluation = models.JSONField(default=dict, blank=True)
    # The champion arm's integer sums over its kept traces (TrialArmTrace), kept with them by
    # the evaluation under this row's lock (trials.services.evidence).
    champion_totals = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Promotion and its watch window.
    promoted_version = models.ForeignKey(
        GenomeVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    watch = models.CharField(max_length=16, choices=Watch.choices, default=Watch.NONE, blank=True)
    queued_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-queued_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["controller_node_id"],
                condition=Q(state="active"),
                name="one_active_trial_per_controller",
            ),
        ]
        permissions = [("approve_trial", "Can approve or reject a trial")]

    def __str__(self) -> str:
        return f"trial {self.pk[:8]} at {self.controller_node_id} ({self.state})"

    @property
    def id(self) -> str:
        return str(self.pk)

    @property
    def awaiting_operator(self) -> bool:
        """Approval is pending: a live trial that needs it, or an inconclusive one."""
        if self.state == self.State.INCONCLUSIVE:
            return True
        return (
            self.state == self.State.ACTIVE and self.requires_approval and self.approved_at is None
        )


class TrialApproval(models.Model):
    """An operator's decision on a trial, with the evidence they saw (hashed)."""

    class Verdict(models.TextChoices):
        APPROVE = "approve"
        REJECT = "reject"

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="approvals")
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    evidence_hash = models.CharField(max_length=71)
    overrides_rule = models.BooleanField(
        default=False, help_text="The operator decided against the rule's verdict."
    )
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-decided_at"]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.verdict}d trial {self.trial_id[:8]}"


class ArchiveRecord(models.Model):
    """One candidate as one activation evaluated it: its objectives, its place on the Pareto
    frontier, its selection score; and, once its trial ends, what really happened
    (docs/rules/trials.md, "Objectives and Pareto frontier").
    """

    class Status(models.TextChoices):
        SELECTED_FOR_TRIAL = "selected_for_trial"
        PARETO_FRONTIER = "pareto_frontier"
        DOMINATED = "dominated"

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="archive_records")
    controller_node_id = models.CharField(max_length=ID_LENGTH, db_index=True)
    activation_id = models.CharField(
        max_length=64, db_index=True, help_text="The activation that evaluated it."
    )
    status = models.CharField(max_length=32, choices=Status.choices)
    policy = models.CharField(max_length=100)
    selection_score = models.FloatField()
    frontier_size = models.PositiveIntegerField()
    objectives = models.JSONField(default=dict)
    reasons = models.JSONField(default=list, blank=True)
    replay = models.JSONField(default=dict, blank=True, help_text="The replay summary.")
    metadata = models.JSONField(default=dict, blank=True)
    # Filled in when the trial ends: the real outcome the selection can learn from.
    outcome = models.CharField(max_length=16, blank=True)
    realised_score = models.FloatField(null=True, blank=True)
    realised_traces = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.status} {self.trial_id[:8]} ({self.selection_score:.1f})"


class EvolutionGeneration(models.Model):
    """One deterministic generation of a controller's evolution: its parents and offspring
    (docs/rules/trials.md, "Evolution generation")."""

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    controller_node_id = models.CharField(max_length=ID_LENGTH)
    generation = models.PositiveIntegerField()
    policy = models.CharField(max_length=100)
    selection_policy = models.CharField(max_length=100)
    parent_trial_ids = models.JSONField(default=list, blank=True)
    offspring_trial_ids = models.JSONField(default=list, blank=True)
    operators = models.JSONField(default=list, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    genome_id = models.CharField(max_length=ID_LENGTH, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["controller_node_id", "generation"], name="one_generation_number_each"
            ),
        ]

    def __str__(self) -> str:
        return f"generation {self.generation} of {self.controller_node_id}"


class TrialArmTrace(models.Model):
    """What a trial's evaluation read of one trace in its window, once: the trace's arm
    (candidate, champion or neither) and the few numbers the decision needs
    (``trials.services.evidence``).

    Task traces are append-only (a database guard refuses UPDATE and DELETE), and whether a
    trace belongs to an arm depends only on the trace and the trial's fixed settings, so
    what is read once stays true: each evaluation reads only the window's traces not yet
    here, instead of both arms again. Written only by the evaluation, under the trial's row
    lock; ``(trial, trace_id)`` is unique, so a trace is never counted twice.
    """

    class Arm(models.TextChoices):
        CANDIDATE = "candidate"
        CHAMPION = "champion"
        NEITHER = "neither"

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="arm_traces")
    trace_id = models.CharField(max_length=64)
    arm = models.CharField(max_length=16, choices=Arm.choices)
    task_id = models.CharField(max_length=ID_LENGTH)
    started_at = models.DateTimeField()
    total_score = models.FloatField()
    succeeded = models.BooleanField()
    tokens = models.BigIntegerField()
    latency_ms = models.BigIntegerField()
    capability_violation = models.BooleanField()
    task_class = models.CharField(max_length=ID_LENGTH, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "trace_id"], name="trial_arm_trace_once"),
        ]
        indexes = [
            models.Index(fields=["trial", "arm", "started_at", "trace_id"], name="trial_arm_order")
        ]

    def __str__(self) -> str:
        return f"trace {self.trace_id[:8]} in the {self.arm} arm of {self.trial_id[:8]}"
