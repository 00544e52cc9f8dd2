from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from accesslog.admin_door_import import door_import_view
from accesslog.connectors.health import errors_last_hour
from accesslog.models import AccessSystem, ConnectorHealth, Door, DoorCamera, SystemKind
from cameras.admin import CameraOnFloorInline
from maps.admin import FloorAdmin, PlacedAdmin, PlanPlacementMedia, floor_plans, plan_placement
from responder.core.audit import audit_record

# --- Access systems and doors -----------------------------------------------------------


@admin.register(AccessSystem)
class AccessSystemAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "door_count"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    fields = ["name", "slug", "kind", "webhook_secret_state"]
    readonly_fields = ["webhook_secret_state"]
    actions = ["rotate_webhook_secret", "import_doors"]
    change_form_template = "accesslog/admin/accesssystem_change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessSystem]:
        return super().get_queryset(request).annotate(door_count=Count("doors"))

    @admin.display(description="doors", ordering="door_count")
    def door_count(self, system: AccessSystem) -> int:
        return system.door_count  # type: ignore[attr-defined]  # get_queryset annotates it

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
                until = system.previous_secret_until  # set by the rotation
                details = {"previous_valid_until": until and until.isoformat()}
                audit_record(
                    action="webhook_secret.rotated", request=request, obj=system, details=details
                )
                rotated.append((system, secret))
        return secrets_shown_once(request, rotated, verb="rotated")

    def has_door_import_permission(self, request: HttpRequest) -> bool:
        """An import creates and changes doors: who may do both by hand may import."""
        user = request.user
        return user.has_perm("accesslog.add_door") and user.has_perm("accesslog.change_door")

    @admin.action(
        description="Import doors… (from the access system's own list)",
        permissions=["door_import"],
    )
    def import_doors(
        self, request: HttpRequest, queryset: QuerySet[AccessSystem]
    ) -> HttpResponse | None:
        systems = list(queryset[:2])
        if len(systems) != 1:
            self.message_user(
                request, "Choose one access system to import doors from.", messages.ERROR
            )
            return None
        url = reverse("admin:accesslog_accesssystem_import_doors", args=[systems[0].pk])
        return HttpResponseRedirect(url)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.door_import)
        name = "accesslog_accesssystem_import_doors"
        return [path("<path:object_id>/import-doors/", view, name=name), *super().get_urls()]

    def door_import(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_door_import_permission(request):
            raise PermissionDenied
        system = self.get_object(request, object_id)
        if system is None:
            raise Http404("No such access system.")
        return door_import_view(self, request, system)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        system = self.get_object(request, object_id)
        polled = system is not None and system.kind != SystemKind.GENERIC
        allowed = polled and self.has_door_import_permission(request)
        context = {**(extra_context or {}), "door_import_allowed": allowed}
        return super().change_view(request, object_id, form_url, context)


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
        return door.camera_count  # type: ignore[attr-defined]  # get_queryset annotates it

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
    # Names only, above; the stubs type list_display as names or callables.
    readonly_fields = (*list_display, "cursor")  # type: ignore[arg-type]
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


class DoorOnFloorInline(CameraOnFloorInline):
    model = Door  # type: ignore[assignment]  # the same inline, over doors
    fields = ["name", "x", "y"]
    verbose_name_plural = "doors on this floor"


FloorAdmin.inlines = [*FloorAdmin.inlines, DoorOnFloorInline]
