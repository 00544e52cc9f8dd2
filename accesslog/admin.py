from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from accesslog.connectors.health import errors_last_hour
from accesslog.models import AccessSystem, ConnectorHealth, Door, DoorCamera
from maps.admin import PlacedAdmin, PlanPlacementMedia, floor_plans, plan_placement
from responder.audit import audit_record

# --- Access systems and doors -----------------------------------------------------------


@admin.register(AccessSystem)
class AccessSystemAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "door_count"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    fields = ["name", "slug", "kind", "webhook_secret_state"]
    readonly_fields = ["webhook_secret_state"]
    actions = ["rotate_webhook_secret"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessSystem]:
        return super().get_queryset(request).annotate(door_count=Count("doors"))

    @admin.display(description="doors", ordering="door_count")
    def door_count(self, system: AccessSystem) -> int:
        return system.door_count

    @admin.display(description="webhook secret")
    def webhook_secret_state(self, system: AccessSystem) -> str:
        if system.pk is None:
            return "Made when you save, and shown once then."
        rotated = system.secret_rotated_at
        state = f"Set; rotated {rotated:%Y-%m-%d %H:%M %Z}." if rotated else "Set."
        if system.previous_webhook_secret and system.previous_secret_until:
            until = system.previous_secret_until
            if until > timezone.now():
                state += f" The previous one verifies until {until:%Y-%m-%d %H:%M %Z}."
        return state + " To get a new one, rotate it from the list of access systems."

    def response_add(
        self, request: HttpRequest, obj: AccessSystem, post_url_continue: str | None = None
    ) -> HttpResponse:
        return secrets_shown_once(request, [(obj, obj.webhook_secret)], verb="made")

    @admin.action(description="Rotate the webhook secret (the old one verifies a while longer)")
    def rotate_webhook_secret(
        self, request: HttpRequest, queryset: QuerySet[AccessSystem]
    ) -> HttpResponse:
        overlap = settings.WEBHOOK_SECRET_OVERLAP
        rotated = []
        with transaction.atomic():  # no rotation without its audit row
            chosen = AccessSystem.objects.filter(pk__in=queryset.values("pk"))
            for system in chosen.select_for_update():
                secret = system.webhook_secret_rotate(overlap=overlap)
                details = {"previous_valid_until": system.previous_secret_until.isoformat()}
                audit_record(
                    action="webhook_secret.rotated", request=request, obj=system, details=details
                )
                rotated.append((system, secret))
        return secrets_shown_once(request, rotated, verb="rotated")


def secrets_shown_once(
    request: HttpRequest, systems: list[tuple[AccessSystem, str]], *, verb: str
) -> HttpResponse:
    """The only page that ever shows a webhook secret: no cache may keep it."""
    context = {
        **admin.site.each_context(request),
        "title": f"Webhook secret {verb}",
        "systems": systems,
        "verb": verb,
        "overlap_hours": int(settings.WEBHOOK_SECRET_OVERLAP.total_seconds() // 3600),
    }
    response = TemplateResponse(request, "accesslog/admin/webhook_secret.html", context)
    add_never_cache_headers(response)
    return response


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
