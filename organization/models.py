"""Persistence of the organizational genome.

* ``GenomeVersion``: immutable, content-hashed snapshots; each one records the
  patch that produced it from its parent.
* ``ChampionPointer``: which version is live, per controller node.
* ``Node``: the champion's nodes materialised as rows for fast tree and
  subtree queries; rebuilt in the transaction that moves the pointer.
* ``LiveTrial``: the candidate version a controller is trying now (one per controller).

All writes go through ``organization.services``.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from ledger.chain import new_id

ID_LENGTH = 200


new_version_id = new_id  # the name the migrations know


class EncodedJson(str):
    """JSON text encoded already (a genome's canonical text): stored as it is, not re-encoded.

    A 10,000-node genome is 28 MB of JSON; building a dict only for the field to dump it
    again would cost more than the whole patch that produced it.
    """


class GenomeJSONEncoder(json.JSONEncoder):
    """The genome field's encoder: passes EncodedJson through, encodes anything else."""

    def encode(self, o: Any) -> str:
        if isinstance(o, EncodedJson):
            return str(o)
        return super().encode(o)


class GenomeJSONField(models.JSONField):
    """A JSON column that PostgreSQL stores as ``json`` (the text as sent), not ``jsonb``.

    Nothing queries inside a stored genome; it is written once and read whole. Turning
    megabytes of text into ``jsonb`` made each version's INSERT cost more than the rest
    of its patch (measured: 85 ms against 17 ms for a 1,000-node genome); ``json`` only
    checks the syntax. Elsewhere it is the ordinary JSONField.
    """

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_value(
        self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False
    ) -> Any:
        if connection.vendor != "postgresql" or value is None:
            return super().get_db_prep_value(value, connection, prepared)
        from psycopg.types.json import Json  # the json type: no server-side jsonb parse

        return Json(value, dumps=functools.partial(json.dumps, cls=self.encoder))

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        if value is not None and not isinstance(value, str):
            return value  # psycopg decodes json columns itself
        return super().from_db_value(value, expression, connection)


class GenomeVersionImmutableError(Exception):
    """Raised when code tries to change or delete a stored genome version."""


class GenomeVersion(models.Model):
    id = models.CharField(max_length=64, primary_key=True, default=new_version_id)
    content_hash = models.CharField(max_length=71, db_index=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    patch = models.JSONField(null=True, blank=True, help_text="The patch applied to the parent.")
    actor = models.CharField(max_length=150)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    genome = GenomeJSONField(encoder=GenomeJSONEncoder)

    class Meta:
        ordering = ["-created_at"]
        get_latest_by = "created_at"
        permissions = [
            ("rollback_genome", "Can make a copy of an earlier version the champion genome")
        ]

    def __str__(self) -> str:
        return f"{self.content_hash[7:19]} ({self.id[:8]})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise GenomeVersionImmutableError(
                "genome versions are immutable; apply a patch instead"
            )
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise GenomeVersionImmutableError("genome versions are immutable and cannot be deleted")

    @property
    def patch_kind(self) -> str:
        if self.patch is None:
            return "(bootstrap)"
        return str(self.patch.get("kind", "?"))


class ChampionPointer(models.Model):
    """The live genome version of one controller (the root controller, today)."""

    controller_node_id = models.CharField(max_length=ID_LENGTH, primary_key=True)
    version = models.ForeignKey(GenomeVersion, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"champion of {self.controller_node_id}: {self.version}"


class Node(models.Model):
    class Kind(models.TextChoices):
        METASYSTEM = "metasystem", "metasystem"
        LEAF = "leaf", "System 1 leaf"

    class Status(models.TextChoices):
        SHADOW = "Shadow"
        PROBATION = "Probation"
        ACTIVE = "Active"
        RETIRED = "Retired"

    id = models.CharField(max_length=ID_LENGTH, primary_key=True)
    name = models.CharField(max_length=ID_LENGTH)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    depth = models.PositiveIntegerField()
    position = models.PositiveIntegerField(help_text="Pre-order position in the tree.")
    path = models.CharField(
        max_length=2000,
        db_index=True,
        help_text="Escaped ids from the root down to this node: a subtree is a path prefix.",
    )
    ancestor_ids = models.JSONField(default=list, help_text="Immediate parent first, root last.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    leaf_kind = models.CharField(max_length=100, blank=True)
    capabilities = models.JSONField(default=list, help_text="Derived from structure and leaf spec.")
    model_provider = models.CharField(max_length=100, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    version = models.ForeignKey(GenomeVersion, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["position"]
        # The viewer role's one permission: read the organization, its work and its ledger.
        permissions = [
            (
                "view_organization",
                "Can see the organization: dashboard pages, API reads and live streams",
            )
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def is_leaf(self) -> bool:
        return self.kind == self.Kind.LEAF


class SubtreePause(models.Model):
    """A subtree paused by an algedonic signal: no routed work and no grants go into it.

    One row per paused target; a node is paused when it or any ancestor has a
    row. Written only by ``organization.services.subtree_pause`` / ``subtree_resume``
    in the transaction that records the matching ledger event.
    """

    node_id = models.CharField(max_length=ID_LENGTH, primary_key=True)
    signal_id = models.CharField(max_length=64)
    paused_at = models.DateTimeField()
    paused_by = models.CharField(max_length=ID_LENGTH, help_text="The controller that paused it.")
    reason = models.TextField()
    severity = models.PositiveSmallIntegerField(default=1)
    require_human_confirmation = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.node_id} paused since {self.paused_at:%Y-%m-%d %H:%M:%S}"


class LiveTrial(models.Model):
    """The trial a controller is running now: what its router needs to send work to the
    candidate genome (docs/rules/trials.md, "Routing modes").

    Its primary key is the controller, so **at most one live trial per controller** is a
    database constraint. The ``trials`` app owns the trial itself (its record, evidence and
    decision) and opens and closes this row in the transaction that activates or ends the
    trial; the routing controller reads it and counts what it routed.
    """

    class Mode(models.TextChoices):
        SHADOW = "shadow"
        PROBATION = "probation"
        CANARY = "canary"
        DIRECT = "direct"

    controller_node_id = models.CharField(max_length=ID_LENGTH, primary_key=True)
    trial_id = models.CharField(max_length=ID_LENGTH, unique=True)
    candidate_version = models.ForeignKey(GenomeVersion, on_delete=models.PROTECT, related_name="+")
    base_version = models.ForeignKey(GenomeVersion, on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=16, choices=Mode.choices)
    traffic_share_basis_points = models.PositiveIntegerField(null=True, blank=True)
    requires_approval = models.BooleanField(default=False)
    approved = models.BooleanField(
        default=False,
        help_text="An operator approved the trial: its tasks need no per-task approval.",
    )
    max_tasks = models.PositiveIntegerField(null=True, blank=True)
    max_token_budget = models.PositiveBigIntegerField(null=True, blank=True)
    max_files_touched = models.PositiveIntegerField(null=True, blank=True)
    allowed_task_classes = models.JSONField(default=list, blank=True)
    routed_tasks = models.PositiveIntegerField(default=0)
    consumed_tokens = models.PositiveBigIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"trial {self.trial_id} live at {self.controller_node_id} ({self.mode})"
