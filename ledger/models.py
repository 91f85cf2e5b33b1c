"""The append-only, hash-chained ledger and the task traces it indexes.

Rows of ``LedgerEvent`` are written only by ``ledger.services.ledger_append``;
the database refuses UPDATE and DELETE on them (a trigger installed by
migration 0002, see ``ledger/immutability.py``).
"""

from __future__ import annotations

from typing import Any

from django.db import models

from ledger.chain import GENESIS_HASH, new_id

ID_LENGTH = 200


_new_id = new_id  # the name the migrations know


class LedgerImmutableError(Exception):
    """Raised when code tries to change or delete a stored ledger row."""


class LedgerHead(models.Model):
    """The last link of the chain: one row, locked by every append.

    Locking this row serialises appends (so the chain never forks and ``seq``
    has no gaps), and comparing it with the last event detects a deleted tail.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=71, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"ledger head at seq {self.seq}"


class ValuesRowJSONField(models.JSONField):
    """A JSONField that keeps PostgreSQL bulk inserts as plain ``VALUES`` rows.

    Django inserts several rows through ``UNNEST`` of one array per column, which makes
    psycopg escape every payload into a ``text[]`` literal in Python: about as long as the
    rest of a hop's work for the events of one hop. A field with a placeholder of its own
    opts its model out of that path (``SQLInsertCompiler.assemble_as_sql``).
    """

    def get_placeholder(self, value: Any, compiler: Any, connection: Any) -> str:
        return "%s"


class LedgerEvent(models.Model):
    seq = models.BigIntegerField(primary_key=True, help_text="Gap-free position in the chain.")
    id = models.CharField(max_length=64, unique=True, default=_new_id, editable=False)
    # Validated against ledger.kinds.ALL_KINDS on append; no choices, so a new kind
    # needs no migration. Neither kind nor node_id has an index of its own: the (kind, seq)
    # and (node_id, seq) indexes below serve a lookup by either alone, and every index is
    # one more B-tree each append writes.
    kind = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_index=True)
    node_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True)
    responsible_ancestor_ids = models.JSONField(
        default=list, help_text="Ancestors of node_id, immediate parent first, root last."
    )
    directive_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True, db_index=True)
    task_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True, db_index=True)
    trial_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True, db_index=True)
    suggestion_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True)
    genome_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True)
    correlation_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True, db_index=True)
    causation_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True)
    actor = models.CharField(max_length=150)
    payload = ValuesRowJSONField(default=dict)
    prev_hash = models.CharField(max_length=71)
    hash = models.CharField(max_length=71, unique=True)

    class Meta:
        ordering = ["seq"]
        # The explorer's keyset pages (newest first within a kind or a node) read these.
        indexes = [
            models.Index(fields=["kind", "seq"], name="ledger_event_kind_seq"),
            models.Index(fields=["node_id", "seq"], name="ledger_event_node_seq"),
            # A grant's pressure windows: a node's latest events of a few kinds. Through
            # (node_id, seq) alone they scanned back over every other event at the node, a
            # cost that grew with its history, at every routing hop.
            models.Index(fields=["node_id", "kind", "seq"], name="ledger_event_node_kind_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not kwargs.get("force_insert"):
            raise LedgerImmutableError("ledger events are append-only; use ledger_append()")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise LedgerImmutableError("ledger events are append-only and cannot be deleted")


class TaskTrace(models.Model):
    """What one System 1 leaf did for one task (docs/rules/leaf.md, "Trace")."""

    id = models.CharField(max_length=64, primary_key=True, default=_new_id)
    task_id = models.CharField(max_length=ID_LENGTH, db_index=True)
    directive_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True, db_index=True)
    genome_id = models.CharField(max_length=ID_LENGTH)
    assigned_node_id = models.CharField(max_length=ID_LENGTH, db_index=True)
    responsible_ancestor_ids = models.JSONField(
        default=list, help_text="Ancestors of the assigned node, immediate parent first."
    )
    related_suggestion_ids = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    tool_calls = models.IntegerField(default=0)
    latency_ms = models.BigIntegerField(default=0)
    files_touched = models.JSONField(default=list, blank=True)
    lines_added = models.BigIntegerField(default=0)
    lines_deleted = models.BigIntegerField(default=0)
    tests_run = models.JSONField(default=list, blank=True)
    tests_passed = models.BooleanField(null=True, blank=True)
    review_passed = models.BooleanField(null=True, blank=True)
    merged = models.BooleanField(null=True, blank=True)
    reverted = models.BooleanField(null=True, blank=True)
    post_merge_regression = models.BooleanField(null=True, blank=True)
    human_override = models.BooleanField(null=True, blank=True)
    outcome_score = models.FloatField(default=0.0)
    delayed_adjustments = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"trace {self.id} of task {self.task_id} by {self.assigned_node_id}"

    @property
    def total_score(self) -> float:
        return self.outcome_score + sum(
            float(adjustment.get("delta_score", 0.0)) for adjustment in self.delayed_adjustments
        )

    @property
    def token_total(self) -> int:
        return self.input_tokens + self.output_tokens


class TaskTraceScope(models.Model):
    """One row per node a trace belongs to: the assigned node and each ancestor.

    ``subtree_task_traces`` filters on ``node_id`` through the
    ``(node_id, started_at)`` index, then limits: the reference limited first
    and so missed traces.
    """

    trace = models.ForeignKey(TaskTrace, on_delete=models.CASCADE, related_name="scopes")
    node_id = models.CharField(max_length=ID_LENGTH)
    distance = models.PositiveIntegerField(help_text="0 for the assigned node, 1 for its parent…")
    started_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trace", "node_id"], name="trace_scope_unique_node"),
        ]
        indexes = [models.Index(fields=["node_id", "started_at"], name="trace_scope_node_time")]

    def __str__(self) -> str:
        return f"{self.trace_id} in {self.node_id}"


class LedgerVerification(models.Model):
    """One run of the whole-ledger check asked for from the dashboard (``ledger_verify``'s work).

    Not part of the chain: a record of who asked, how far the check got and what it found.
    The worker updates ``events_verified`` as it walks, so the page can show progress.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        OK = "ok"
        BROKEN = "broken"
        FAILED = "failed"  # the check itself could not finish (an error, not a finding)

    id = models.CharField(max_length=64, primary_key=True, default=_new_id, editable=False)
    requested_by = models.CharField(max_length=150)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    events_total = models.BigIntegerField(default=0, help_text="The head's seq when asked.")
    events_verified = models.BigIntegerField(default=0)
    traces_verified = models.BigIntegerField(default=0)
    summary = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Moved on every progress write: a run whose worker died stops moving.
    updated_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        permissions = [("verify_ledger", "Can run a check of the whole ledger from the dashboard")]

    def __str__(self) -> str:
        return f"ledger check {self.id[:8]} ({self.state})"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.OK, self.State.BROKEN, self.State.FAILED)

    @property
    def percent(self) -> int:
        if self.finished:
            return 100
        if self.events_total <= 0:
            return 0
        return min(99, int(100 * self.events_verified / self.events_total))
