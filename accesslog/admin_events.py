"""Events in the admin: read-only, for district IT to find and map unknown doors.

Imported from accesslog/admin.py.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accesslog.models import Event
from accesslog.services import event_doors_link


class UnmappedDoorFilter(admin.SimpleListFilter):
    title = "door"
    parameter_name = "unmapped"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("yes", "Unmapped door"), ("no", "Mapped door")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Event]) -> QuerySet[Event]:
        if self.value() in ("yes", "no"):
            return queryset.filter(door__isnull=self.value() == "yes")
        return queryset


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The log is evidence: nobody adds, edits or deletes an event here."""

    list_display = ["seq", "type", "severity", "door", "door_external_id", "occurred_at", "system"]
    list_filter = [UnmappedDoorFilter, "severity", "type", "system"]
    search_fields = ["door_external_id", "source_event_id", "person", "credential"]
    list_select_related = ["door", "system"]
    date_hierarchy = "occurred_at"
    actions = ["link_doors"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    @admin.action(description="Link to doors created since (by external id)")
    def link_doors(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        linked = event_doors_link(events=queryset)
        self.message_user(request, f"{linked} event(s) linked to their door.", messages.SUCCESS)
