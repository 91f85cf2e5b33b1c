"""Admin for directives, their tasks and envelopes: read-only views of what ran."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from ledger.admin import ReadOnlyAdmin, pretty_json
from workers.errors import Rejected
from workers.models import (
    AcceptanceVerifier,
    AlgedonicSignalRecord,
    BlockedRoute,
    DeferredTask,
    Directive,
    Envelope,
    ResourceEpoch,
    ResourceGrant,
    Task,
)
from workers.services.verifiers import verifier_register, verifier_remove


class TaskInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Task
    fields = ("title", "role", "status", "assigned_node_id", "executed_by", "result_summary")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Directive)
class DirectiveAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "title", "status", "risk", "created_by", "result_summary"]
    list_filter = ["status", "risk"]
    list_select_related = ["created_by"]
    search_fields = ["=id", "title", "body"]
    date_hierarchy = "created_at"
    inlines = [TaskInline]


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ["title", "directive", "role", "status", "assigned_node_id", "executed_by"]
    list_filter = ["status", "role"]
    list_select_related = ["directive"]
    search_fields = ["=id", "title", "=directive__id", "executed_by"]
    exclude = ["packet", "result"]
    readonly_fields = ["packet_pretty", "result_pretty"]

    @admin.display(description="packet")
    def packet_pretty(self, obj: Task) -> str:
        return pretty_json(obj.packet)

    @admin.display(description="result")
    def result_pretty(self, obj: Task) -> str:
        return pretty_json(obj.result)


@admin.register(Envelope)
class EnvelopeAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "payload_type",
        "source_node_id",
        "target_node_id",
        "channel_type",
        "queue",
        "handled_at",
        "deliveries",
    ]
    list_filter = ["payload_type", "channel_type", "queue"]
    search_fields = ["=id", "=correlation_id", "target_node_id", "source_node_id"]
    exclude = ["payload"]
    readonly_fields = ["payload_pretty"]

    @admin.display(description="payload")
    def payload_pretty(self, obj: Envelope) -> str:
        return pretty_json(obj.payload)


@admin.register(AlgedonicSignalRecord)
class AlgedonicSignalAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "valence", "severity", "target_node_id", "source", "raised_by"]
    list_filter = ["valence", "source", "severity"]
    search_fields = ["=id", "target_node_id", "message", "raised_by"]
    date_hierarchy = "created_at"


@admin.register(BlockedRoute)
class BlockedRouteAdmin(ReadOnlyAdmin):
    list_display = [
        "blocked_at",
        "task_id",
        "controller_node_id",
        "child_node_id",
        "paused_node_id",
        "released_at",
    ]
    list_filter = ["released_at"]
    search_fields = ["=task_id", "child_node_id", "controller_node_id"]


@admin.register(ResourceEpoch)
class ResourceEpochAdmin(ReadOnlyAdmin):
    """Budget use per epoch and edge; extra grants go through POST /api/grants/."""

    list_display = [
        "epoch_key",
        "controller_node_id",
        "requester_node_id",
        "allocation_count",
        "allocated_tokens",
        "used_tokens",
        "extra_tokens",
    ]
    list_filter = ["epoch_key"]
    search_fields = ["controller_node_id", "requester_node_id"]


@admin.register(ResourceGrant)
class ResourceGrantAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "epoch",
        "task_id",
        "status",
        "requested_tokens",
        "approved_tokens",
        "used_tokens",
    ]
    list_filter = ["status"]
    list_select_related = ["epoch"]
    search_fields = ["=task_id", "=id"]


@admin.register(DeferredTask)
class DeferredTaskAdmin(ReadOnlyAdmin):
    list_display = [
        "deferred_at",
        "task_id",
        "requester_node_id",
        "epoch_key",
        "reason",
        "released_at",
    ]
    list_filter = ["released_at"]
    search_fields = ["=task_id", "requester_node_id"]


@admin.register(AcceptanceVerifier)
class AcceptanceVerifierAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The commands directives' acceptance checks may name: the admin role's to write.

    Saving and deleting go through ``workers.services.verifiers``, so each change is one
    ledger event with its actor.
    """

    list_display = ["name", "command", "description", "created_by", "updated_at"]
    search_fields = ["name", "command", "description"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    fields = ["name", "command", "description", *readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The name is the key directives use: renaming would orphan them, so it is fixed.
        return [*self.readonly_fields, "name"] if obj is not None else list(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        try:
            verifier_register(
                name=obj.name,
                command=obj.command,
                description=obj.description,
                actor=f"user:{request.user.get_username()}",
            )
        except Rejected as rejected:
            self.message_user(request, f"Not saved: {rejected}", level=messages.ERROR)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        verifier_remove(name=obj.name, actor=f"user:{request.user.get_username()}")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for verifier in queryset:
            self.delete_model(request, verifier)
