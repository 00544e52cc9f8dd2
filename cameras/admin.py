from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse

from cameras.forms import CameraAdminForm, CameraImportForm
from cameras.models import Camera, Tag
from cameras.services import (
    CSV_COLUMNS,
    REQUIRED_COLUMNS,
    camera_import_csv,
    cameras_stop,
    cameras_switch,
)
from maps.admin import FloorAdmin, PlacedAdmin, PlanPlacementMedia, floor_plans, plan_placement
from maps.models import Floor
from responder.core.access import signed_in
from responder.core.audit import audit_record


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["slug", "camera_count"]
    search_fields = ["slug"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        return super().get_queryset(request).annotate(camera_count=Count("cameras"))

    @admin.display(description="cameras", ordering="camera_count")
    def camera_count(self, tag: Tag) -> int:
        return tag.camera_count  # type: ignore[attr-defined]  # get_queryset annotates it


@admin.register(Camera)
class CameraAdmin(PlacedAdmin):
    form = CameraAdminForm
    list_display = ["name", "building", "floor", "vendor", "model", "enabled", "placed"]
    list_filter = ["enabled", "vendor", "building__campus", "building", "tags"]
    list_select_related = ["building", "floor__building"]
    search_fields = ["name", "model", "building__name", "tags__slug"]
    autocomplete_fields = ["tags"]
    readonly_fields = ["plan_preview"]
    actions = ["enable", "disable"]
    fieldsets = [
        (None, {"fields": ["name", "enabled", "vendor", "model", "tags"]}),
        ("Place", {"fields": ["building", "floor", "x", "y", "heading", "field_of_view"]}),
        ("Floor plan", {"fields": ["plan_preview"]}),
        (
            "Streams",
            {
                "fields": [
                    "main_stream_url",
                    "sub_stream_url",
                    "username",
                    "password",
                    "clear_credentials",
                ]
            },
        ),
    ]
    Media = PlanPlacementMedia

    @admin.display(boolean=True)
    def placed(self, camera: Camera) -> bool:
        return camera.placement is not None

    @admin.display(description="Plan")
    def plan_preview(self, camera: Camera | None) -> str:
        return plan_placement(
            {"floors": floor_plans()}, help_text="Click the plan to place the camera."
        )

    @admin.action(description="Enable the selected cameras")
    def enable(self, request: HttpRequest, queryset: QuerySet[Camera]) -> None:
        count = cameras_switch(cameras=queryset, enabled=True)
        self.message_user(request, f"Enabled {count} camera(s).", messages.SUCCESS)

    @admin.action(description="Disable the selected cameras")
    def disable(self, request: HttpRequest, queryset: QuerySet[Camera]) -> None:
        count = cameras_switch(cameras=queryset, enabled=False)
        self.message_user(request, f"Disabled {count} camera(s).", messages.SUCCESS)

    def save_model(
        self, request: HttpRequest, obj: Camera, form: CameraAdminForm, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        if not obj.enabled:
            # Off means off: its running sessions stop, not only new requests.
            transaction.on_commit(lambda: cameras_stop(camera_ids=[obj.pk]))

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="cameras_camera_import"), *super().get_urls()]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CameraImportForm(request.POST or None, request.FILES or None)
        result = None
        if request.method == "POST" and form.is_valid():
            result = camera_import_csv(file=form.cleaned_data["file"], by=signed_in(request.user))
            if result.ok:
                audit_record(
                    action="camera.import",
                    request=request,
                    details={
                        "file": form.cleaned_data["file"].name,
                        "cameras": [camera.id for camera in result.cameras],
                    },
                )
                message = f"Imported {len(result.cameras)} camera(s)."
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:cameras_camera_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import cameras from CSV",
            "form": form,
            "result": result,
            "columns": CSV_COLUMNS,
            "required": REQUIRED_COLUMNS,
        }
        return render(request, "admin/cameras/camera/import.html", context)


class CameraOnFloorInline(admin.TabularInline):
    model = Camera
    fk_name = "floor"
    fields = ["name", "x", "y", "heading", "field_of_view"]
    readonly_fields = ["name"]
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "cameras on this floor"

    def has_add_permission(self, request: HttpRequest, obj: Floor | None = None) -> bool:
        return False


FloorAdmin.inlines = [*FloorAdmin.inlines, CameraOnFloorInline]
