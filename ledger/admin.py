"""Ledger admin: events and traces are read-only for everyone, superusers included."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from ledger.models import LedgerEvent, TaskTrace


def pretty_json(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Viewing only: no add, change or delete, whoever asks."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}


@admin.register(LedgerEvent)
class LedgerEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "kind", "created_at", "node_id", "actor", "directive_id", "task_id"]
    list_filter = ["kind"]
    search_fields = [
        "=seq",
        "=id",
        "node_id",
        "directive_id",
        "task_id",
        "trial_id",
        "correlation_id",
    ]
    date_hierarchy = "created_at"
    ordering = ["-seq"]
    exclude = ["payload"]
    readonly_fields = ["payload_pretty"]

    @admin.display(description="payload")
    def payload_pretty(self, obj: LedgerEvent) -> str:
        return pretty_json(obj.payload)


@admin.register(TaskTrace)
class TaskTraceAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "task_id",
        "assigned_node_id",
        "started_at",
        "outcome_score",
        "tests_passed",
        "latency_ms",
    ]
    list_filter = ["tests_passed", "merged", "reverted"]
    search_fields = ["=id", "task_id", "assigned_node_id", "directive_id", "genome_id"]
    date_hierarchy = "started_at"
    exclude = ["metadata"]
    readonly_fields = ["metadata_pretty"]

    @admin.display(description="metadata")
    def metadata_pretty(self, obj: TaskTrace) -> str:
        return pretty_json(obj.metadata)
