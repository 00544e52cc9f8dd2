"""Exports and share links in the admin: read-only. They are made, shared and revoked
through the audited API; the admin shows who exported what, why, and who it was shared with."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from responder.core.admin import ReadOnlyAdmin
from responder.evidence.models import Export, Share


class ShareInline(admin.TabularInline):
    model = Share
    fields = ["note", "created_by", "created_at", "expires_at", "revoked_at", "revoked_by"]
    readonly_fields = ["note", "created_by", "created_at", "expires_at", "revoked_at",
                       "revoked_by"]  # fmt: skip
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Export)
class ExportAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "created_by", "created_at", "start", "end", "bytes", "reason"]
    list_filter = ["status"]
    list_select_related = ["created_by"]
    search_fields = ["reason", "created_by__username"]
    date_hierarchy = "created_at"
    exclude = ["task_id"]
    inlines = [ShareInline]
