"""Admin for the genome: versions, champion pointers and nodes are read-only here.

The champion changes only through ``genome_apply_patch`` (command line
``genome_patch``, and trial promotion) or ``genome_rollback`` (a version's "Roll back to
this version" button, for users with ``organization.rollback_genome``), never by editing
rows.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from ledger.admin import ReadOnlyAdmin, pretty_json
from organization.genome import GenomeError
from organization.models import ChampionPointer, GenomeVersion, Node, SubtreePause
from organization.services import genome_rollback

ROLLBACK_PERMISSION = "organization.rollback_genome"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


VERSION_FIELDS = (
    "id",
    "content_hash",
    "parent",
    "actor",
    "reason",
    "created_at",
    "patch_pretty",
    "diff_against_parent",
    "genome_pretty",
)


@admin.register(GenomeVersion)
class GenomeVersionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "short_hash", "patch_kind", "actor", "reason", "parent"]
    list_select_related = ["parent"]
    search_fields = ["=id", "content_hash", "actor", "reason"]
    date_hierarchy = "created_at"
    fields = VERSION_FIELDS
    readonly_fields = VERSION_FIELDS
    change_form_template = "admin/organization/genomeversion/change_form.html"

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = {
            **(extra_context or {}),
            "may_roll_back": request.user.has_perm(ROLLBACK_PERMISSION),
        }
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/rollback/",
                self.admin_site.admin_view(self.rollback_view),
                name="organization_genomeversion_rollback",
            ),
            *super().get_urls(),
        ]

    def rollback_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A reason (GET), then ``genome_rollback`` (POST): a copy of this version becomes
        the champion."""
        if not request.user.has_perm(ROLLBACK_PERMISSION):
            raise PermissionDenied
        version = GenomeVersion.objects.defer("genome").filter(pk=object_id).first()
        if version is None:
            raise Http404("No such genome version.")
        errors: list[str] = []
        reason = ""
        if request.method == "POST":
            reason = request.POST.get("reason", "").strip()
            if not reason:
                errors = ["A rollback needs a reason."]
            elif len(reason) > 500:
                errors = ["At most 500 characters."]
            else:
                try:
                    rolled = genome_rollback(
                        to_version_id=version.id,
                        actor=f"user:{request.user.get_username()}",
                        reason=reason,
                    )
                except GenomeError as refused:
                    errors = [str(refused)]
                else:
                    self.message_user(
                        request,
                        f"Rolled back to {version}: the champion is now {rolled}.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(
                        reverse("admin:organization_genomeversion_change", args=[rolled.pk])
                    )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Roll back to {version}",
            "version": version,
            "errors": errors,
            "reason": reason,
        }
        return TemplateResponse(
            request,
            "admin/organization/genomeversion/rollback.html",
            context,
            status=400 if errors else 200,
        )

    @admin.display(description="hash")
    def short_hash(self, obj: GenomeVersion) -> str:
        return obj.content_hash[:19]

    @admin.display(description="patch")
    def patch_pretty(self, obj: GenomeVersion) -> str:
        return pretty_json(obj.patch) if obj.patch is not None else "(bootstrap: no parent)"

    @admin.display(description="genome")
    def genome_pretty(self, obj: GenomeVersion) -> str:
        return pretty_json(obj.genome)

    @admin.display(description="diff against parent")
    def diff_against_parent(self, obj: GenomeVersion) -> str:
        if obj.parent is None:
            return "(no parent)"
        before = _pretty(obj.parent.genome).splitlines()
        after = _pretty(obj.genome).splitlines()
        diff = difflib.unified_diff(before, after, "parent", "this version", lineterm="", n=2)
        return format_html('<pre class="genome-diff">{}</pre>', "\n".join(diff))


@admin.register(ChampionPointer)
class ChampionPointerAdmin(ReadOnlyAdmin):
    list_display = ["controller_node_id", "version", "updated_at"]
    list_select_related = ["version"]


class SubtreeFilter(admin.SimpleListFilter):
    """Narrow the node list to one metasystem's subtree (a path prefix)."""

    title = "subtree of"
    parameter_name = "subtree"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        metasystems = Node.objects.filter(kind=Node.Kind.METASYSTEM).order_by("position")
        return [(node.id, f"{'— ' * node.depth}{node.name}") for node in metasystems]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Node]) -> QuerySet[Node]:
        if not self.value():
            return queryset
        root = Node.objects.filter(id=self.value()).first()
        if root is None:
            return queryset.none()
        return queryset.filter(path__startswith=root.path)


@admin.register(Node)
class NodeAdmin(ReadOnlyAdmin):
    list_display = ["indented_name", "kind", "leaf_kind", "status", "depth", "capability_list"]
    list_filter = ["kind", "status", SubtreeFilter]
    list_select_related = ["parent"]
    search_fields = ["id", "name", "path"]
    ordering = ["position"]

    @admin.display(description="node", ordering="position")
    def indented_name(self, obj: Node) -> str:
        return format_html("{}{}", "\u00a0\u00a0" * obj.depth * 2, obj.name)

    @admin.display(description="capabilities")
    def capability_list(self, obj: Node) -> str:
        return ", ".join(obj.capabilities)


@admin.register(SubtreePause)
class SubtreePauseAdmin(ReadOnlyAdmin):
    """Paused subtrees; pause and resume by raising a signal (API or the alarms page)."""

    list_display = ["node_id", "paused_at", "paused_by", "severity", "reason"]
    search_fields = ["node_id", "reason"]
