"""Directives, their tasks, and the envelopes that carry work between nodes.

An ``Envelope`` row is the durable form of a message on a VSM channel. Celery
carries only its id; the handler claims the row (``handled_at``) in the same
transaction as the handling's effects, so a redelivered message does nothing
twice and a crashed handler leaves nothing half done.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ledger.chain import new_id

ID_LENGTH = 200


class Directive(models.Model):
    class Status(models.TextChoices):
        ACCEPTED = "accepted"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    class Risk(models.TextChoices):
        LOW = "Low"
        MEDIUM = "Medium"
        HIGH = "High"
        CRITICAL = "Critical"

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    title = models.CharField(max_length=500)
    body = models.TextField(blank=True)
    constraints = models.JSONField(default=list, blank=True)
    desired_state = models.TextField(null=True, blank=True)
    risk = models.CharField(max_length=16, choices=Risk.choices, default=Risk.MEDIUM)
    metadata = models.JSONField(default=dict, blank=True)
    acceptance = models.JSONField(default=list, blank=True)
    planned_tasks = models.JSONField(
        default=list, blank=True, help_text="Operator-supplied tasks with dependencies, if any."
    )
    origin = models.CharField(max_length=100, default="api")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.ACCEPTED, db_index=True
    )
    root_node_id = models.CharField(max_length=ID_LENGTH)
    genome_id = models.CharField(max_length=ID_LENGTH)
    result_summary = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=71, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        # The roles (docs/operations.md, "Roles") grant these; vsmsite/roles.py says who has which.
        permissions = [("submit_directive", "Can submit directives")]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                name="directive_idempotency_key_per_user",
                condition=models.Q(idempotency_key__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.COMPLETED, self.Status.FAILED)


class Task(models.Model):
    """One task packet of a directive, as the root controller tracks it."""

    class Status(models.TextChoices):
        WAITING = "waiting", "waiting for dependencies"
        ROUTED = "routed"
        BLOCKED_PAUSED = "blocked_paused", "waiting for a paused subtree to resume"
        DEFERRED_BUDGET = "deferred_budget", "waiting for a resource grant (next epoch or extra)"
        COMPLETED = "completed"
        FAILED = "failed"
        REVISED = "revised", "failed, superseded by a revision"

    FINISHED = (Status.COMPLETED, Status.FAILED, Status.REVISED)

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    directive = models.ForeignKey(Directive, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=500)
    role = models.CharField(max_length=32, blank=True, help_text="Decomposition role, if any.")
    packet = models.JSONField(help_text="The TaskPacket in its wire form.")
    dependencies = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    assigned_node_id = models.CharField(max_length=ID_LENGTH, blank=True)
    executed_by = models.CharField(max_length=ID_LENGTH, blank=True)
    result = models.JSONField(null=True, blank=True)
    result_summary = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"


class Envelope(models.Model):
    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    channel_type = models.CharField(max_length=40)
    source_node_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True)
    target_node_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True, db_index=True)
    correlation_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True, db_index=True)
    # Indexed: a redelivered hop walks down the causation from it (workers.services.delivery).
    causation_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True, db_index=True)
    priority = models.CharField(max_length=16)
    payload_type = models.CharField(max_length=64)
    payload = models.JSONField()
    trace = models.JSONField(default=list)
    metadata = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    queue = models.CharField(max_length=200, help_text="The Celery queue it was sent on.")
    genome_id = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        help_text="The genome version its routing decision was made under; its handler runs "
        "under the same version.",
    )
    handled_at = models.DateTimeField(null=True, blank=True, db_index=True)
    handled_by = models.CharField(max_length=200, blank=True)
    deliveries = models.PositiveIntegerField(
        default=0,
        help_text="Claims that committed: 1 once handled (a crashed attempt leaves none).",
    )
    # The outbox (workers.services.outbox): an unhandled envelope is sent again once this
    # time has passed (null: its grace period after created_at). A resend and a leaf that
    # starts the task both push it forward: a lease that ends if their process dies.
    resend_after = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Not sent again before this time (a resend's backoff, a leaf's lease).",
    )
    resends = models.PositiveIntegerField(
        default=0, help_text="Times the outbox sweeper sent it again."
    )

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.payload_type} → {self.target_node_id}"


class AlgedonicSignalRecord(models.Model):
    """Every algedonic signal, from operators, nodes or integrations (docs/rules/algedonic.md)."""

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    source = models.CharField(max_length=40)
    valence = models.CharField(max_length=16)
    severity = models.PositiveSmallIntegerField()
    target_node_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True, db_index=True)
    related_task_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True)
    related_suggestion_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True)
    message = models.TextField()
    override_policy = models.JSONField(null=True, blank=True)
    raised_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            (
                "raise_signal",
                "Can raise algedonic and environment signals, and pause and resume subtrees",
            )
        ]

    def __str__(self) -> str:
        return f"{self.valence} {self.severity} at {self.target_node_id}: {self.message[:60]}"


class BlockedRoute(models.Model):
    """A task held by a controller because the child it must go to is paused.

    Released (routed again by the same controller) when the subtree resumes.
    """

    task_id = models.CharField(max_length=64, db_index=True)
    directive_id = models.CharField(max_length=64, null=True, blank=True)
    controller_node_id = models.CharField(max_length=ID_LENGTH)
    child_node_id = models.CharField(max_length=ID_LENGTH)
    paused_node_id = models.CharField(max_length=ID_LENGTH)
    packet = models.JSONField()
    correlation_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True)
    genome_id = models.CharField(
        max_length=64, null=True, blank=True, help_text="The version the task was routed under."
    )
    blocked_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["blocked_at"]

    def __str__(self) -> str:
        return f"task {self.task_id} held at {self.controller_node_id} for {self.child_node_id}"


class ResourceEpoch(models.Model):
    """What one System 3 controller granted one child in one epoch (docs/rules/bargaining.md).

    Invariant: ``allocated_tokens`` never exceeds the edge's token budget plus
    ``extra_tokens``. Every grant locks this row (``select_for_update``) before it reads
    the usage and writes the new totals, so concurrent grants on the same edge queue
    instead of both spending the same remainder. Denied decisions are not counted.
    """

    epoch_key = models.CharField(max_length=32)
    controller_node_id = models.CharField(max_length=ID_LENGTH)
    requester_node_id = models.CharField(max_length=ID_LENGTH)
    allocation_count = models.PositiveIntegerField(
        default=0, help_text="Approved and partially approved grants of the epoch."
    )
    allocated_tokens = models.PositiveBigIntegerField(default=0)
    used_tokens = models.PositiveBigIntegerField(
        default=0, help_text="Tokens the leaf reported using under this epoch's grants."
    )
    extra_tokens = models.PositiveBigIntegerField(
        default=0, help_text="Added to the genome's token budget by operators, for this epoch."
    )
    extra_messages = models.PositiveIntegerField(
        default=0, help_text="Added to the genome's message budget by operators, for this epoch."
    )
    extra_granted_at = models.DateTimeField(null=True, blank=True)
    pain_signal_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="The pain signal raised when this edge first deferred a task this epoch.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-epoch_key", "controller_node_id", "requester_node_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["epoch_key", "controller_node_id", "requester_node_id"],
                name="resource_epoch_per_edge",
            )
        ]

    def __str__(self) -> str:
        return f"{self.controller_node_id} → {self.requester_node_id} in {self.epoch_key}"


class ResourceGrant(models.Model):
    """A System 3 decision on a child's request and what was used (docs/rules/bargaining.md)."""

    class Status(models.TextChoices):
        APPROVED = "Approved"
        PARTIALLY_APPROVED = "PartiallyApproved"
        DENIED = "Denied"

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    epoch = models.ForeignKey(ResourceEpoch, on_delete=models.PROTECT, related_name="grants")
    task_id = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    envelope_id = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        db_index=True,
        help_text="The delivery that asked; a redelivery reuses its grant.",
    )
    status = models.CharField(max_length=20, choices=Status.choices, db_index=True)
    requested_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    approved_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    used_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    reasons = models.JSONField(default=list)
    decision = models.JSONField(help_text="The ResourceAllocationDecision in its wire form.")
    metadata = models.JSONField(default=dict, help_text="The decision event's metadata.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("grant_budget", "Can grant a node extra budget for its epoch")]

    def __str__(self) -> str:
        return f"{self.status} {self.approved_tokens} tokens for task {self.task_id}"

    @property
    def denied(self) -> bool:
        return self.status == self.Status.DENIED


class DeferredTask(models.Model):
    """A task a leaf did not start: its controller denied the grant (docs/rules/bargaining.md).

    Released (sent back to the controller to be routed again) when its epoch has
    passed, by the periodic ``vsm.epochs.release_deferred``, or when an operator
    grants the edge extra tokens.
    """

    task_id = models.CharField(max_length=64, db_index=True)
    directive_id = models.CharField(max_length=64, null=True, blank=True)
    controller_node_id = models.CharField(max_length=ID_LENGTH)
    requester_node_id = models.CharField(max_length=ID_LENGTH)
    epoch_key = models.CharField(max_length=32)
    grant = models.ForeignKey(ResourceGrant, on_delete=models.PROTECT, related_name="deferrals")
    reason = models.TextField()
    packet = models.JSONField()
    correlation_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True)
    genome_id = models.CharField(
        max_length=64, null=True, blank=True, help_text="The version the task was routed under."
    )
    deferred_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True, db_index=True)
    released_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["deferred_at"]

    def __str__(self) -> str:
        return f"task {self.task_id} deferred at {self.requester_node_id} in {self.epoch_key}"


class AcceptanceVerifier(models.Model):
    """A command an admin registered for directives' acceptance checks to name.

    A directive names verifiers from this registry only: the command is a shell snippet run
    on a worker (in the agent sandbox), so who may write one is an admin's decision
    (docs/operations.md, "Roles"). The directive stores the command it resolved to, so a
    later edit here never changes the checks of work already submitted.
    """

    name = models.SlugField(max_length=100, primary_key=True)
    command = models.TextField(help_text="A bash snippet run in the task workspace; exit 0 passes.")
    description = models.CharField(max_length=500, blank=True)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
