from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from accesslog.connectors.health import errors_last_hour
from accesslog.models import AccessSystem, ConnectorHealth, Door, DoorCamera
from maps.admin import PlacedAdmin, PlanPlacementMedia, floor_plans, plan_placement

# --- Access systems and doors -----------------------------------------------------------


@admin.register(AccessSystem)
class AccessSystemAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "door_count"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessSystem]:
        return super().get_queryset(request).annotate(door_count=Count("doors"))

    @admin.display(description="doors", ordering="door_count")
    def door_count(self, system: AccessSystem) -> int:
        return system.door_count


class DoorCameraInline(admin.TabularInline):
    model = DoorCamera
    fields = ["rank", "camera"]
    autocomplete_fields = ["camera"]
    ordering = ["rank"]
    extra = 1
    verbose_name = "camera"
    verbose_name_plural = "cameras, nearest first (rank 0)"


@admin.register(Door)
class DoorAdmin(PlacedAdmin):
    list_display = ["name", "external_id", "system", "building", "floor", "camera_count"]
    list_filter = ["system", "building__campus", "building"]
    list_select_related = ["system", "building", "floor__building"]
    search_fields = ["name", "external_id", "building__name"]
    readonly_fields = ["plan_preview"]
    inlines = [DoorCameraInline]
    fieldsets = [
        (None, {"fields": ["name", "system", "external_id"]}),
        ("Place", {"fields": ["building", "floor", "x", "y"]}),
        ("Floor plan", {"fields": ["plan_preview"]}),
    ]
    Media = PlanPlacementMedia

    def get_queryset(self, request: HttpRequest) -> QuerySet[Door]:
        return super().get_queryset(request).annotate(camera_count=Count("door_cameras"))

    @admin.display(description="cameras", ordering="camera_count")
    def camera_count(self, door: Door) -> int:
        return door.camera_count

    @admin.display(description="Plan")
    def plan_preview(self, door: Door | None) -> str:
        return plan_placement(
            {"floors": floor_plans()}, help_text="Click the plan to place the door."
        )


@admin.register(ConnectorHealth)
class ConnectorHealthAdmin(admin.ModelAdmin):
    """Per access system: when its connector last heard an event, where its cursor stands,
    how late events reach us, and its errors in the last hour. Read-only: connectors
    write it."""

    list_display = [
        "system",
        "last_event_at",
        "lag",
        "last_contact_at",
        "errors_in_the_last_hour",
        "last_error",
        "silence_warned_at",
    ]
    list_select_related = ["system", "system__cursor"]
    readonly_fields = [*list_display, "cursor"]
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="lag")
    def lag(self, health: ConnectorHealth) -> str:
        """From the event at the door to its arrival here, for the last event."""
        if health.last_event_at is None or health.last_event_received_at is None:
            return "-"
        lag = max(health.last_event_received_at - health.last_event_at, timedelta(0))
        return f"{lag.total_seconds():.1f} s"

    @admin.display(description="errors, last hour")
    def errors_in_the_last_hour(self, health: ConnectorHealth) -> int:
        return errors_last_hour(health)

    @admin.display(description="cursor")
    def cursor(self, health: ConnectorHealth) -> str:
        cursor = getattr(health.system, "cursor", None)
        return cursor.position if cursor else "(first start pending)"


from accesslog import admin_events  # noqa: E402, F401
