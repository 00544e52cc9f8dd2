"""District IT's recording settings: policies (the default and per camera), holds, stops,
and the storage page; held bytes and every hold on a camera's pages. Holds and stops are
read-only here: holds are placed and released through the audited API (/api/v1/holds) and
the evidence paths, stops end by themselves when space returns."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from accesslog.models import EventType
from cameras.admin import CameraAdmin
from cameras.models import Camera
from responder.recording.models import Hold, RecordingPolicy, RecordingStop
from responder.recording.policy import policy_default
from responder.recording.services import OPEN_END
from responder.recording.status import held_bytes_by_camera, storage_status


class RecordingPolicyForm(forms.ModelForm):
    event_types = forms.TypedMultipleChoiceField(
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Door events, besides alarms, whose footage events mode keeps.",
    )

    class Meta:
        model = RecordingPolicy
        fields = [
            "camera",
            "mode",
            "continuous_retention_days",
            "event_retention_days",
            "pre_roll_seconds",
            "post_roll_seconds",
            "event_types",
            "priority",
        ]


@admin.register(RecordingPolicy)
class RecordingPolicyAdmin(admin.ModelAdmin):
    form = RecordingPolicyForm
    list_display = [
        "__str__",
        "mode",
        "continuous_retention_days",
        "event_retention_days",
        "pre_roll_seconds",
        "post_roll_seconds",
        "priority",
    ]
    list_filter = ["mode"]
    list_select_related = ["camera"]
    search_fields = ["camera__name"]
    autocomplete_fields = ["camera"]
    change_list_template = "admin/recording/recordingpolicy/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[RecordingPolicy]:
        policy_default()  # IT finds the district default listed before anything used it
        return super().get_queryset(request)

    def get_actions(self, request: HttpRequest) -> dict:
        # Bulk delete would take the default with it; a camera's own row goes on its page.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(
        self, request: HttpRequest, obj: RecordingPolicy | None = None
    ) -> bool:
        # Without the default, every camera would silently take the model's defaults.
        return super().has_delete_permission(request, obj) and not (obj and obj.camera_id is None)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        stopped = RecordingStop.objects.count()
        if stopped:
            messages.warning(
                request,
                f"The disk guard stopped recording {stopped} camera(s): only held footage was "
                "left to delete. See Storage status.",
            )
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.storage_view)
        return [path("storage/", view, name="recording_storage"), *super().get_urls()]

    def storage_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Recording storage",
            "status": storage_status(),
            "holds": Hold.objects.active()
            .select_related("created_by", "incident")
            .order_by("-created_at")[:20],
            "open_end": OPEN_END,
        }
        return render(request, "admin/recording/storage.html", context)


def hold_who(hold: Hold) -> str:
    if hold.created_by:
        return hold.created_by.get_username()
    # An incident's own hold: the incident placed it when it opened.
    return f"incident {hold.incident_id}: {hold.incident.title}" if hold.incident else "system"


def hold_incident(hold: Hold) -> str:
    if hold.incident is None:
        return "-"
    url = reverse("admin:responder_incident_change", args=[hold.incident_id])
    return format_html('<a href="{}">{}</a>', url, hold.incident.title)


def hold_end(hold: Hold) -> str:
    return "while the incident is open" if hold.end >= OPEN_END else f"{hold.end:%Y-%m-%d %H:%M}"


@admin.register(Hold)
class HoldAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "source",
        "reason",
        "who",
        "incident_link",
        "start",
        "held_until",
        "until",
        "cameras_count",
        "active",
    ]
    list_filter = ["source", "released_at"]
    search_fields = ["reason", "created_by__username"]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Hold]:
        queryset = super().get_queryset(request).select_related("created_by", "incident")
        return queryset.annotate(camera_count=Count("cameras"))

    @admin.display(description="who")
    def who(self, hold: Hold) -> str:
        return hold_who(hold)

    @admin.display(description="incident")
    def incident_link(self, hold: Hold) -> str:
        return hold_incident(hold)

    @admin.display(description="end")
    def held_until(self, hold: Hold) -> str:
        return hold_end(hold)

    @admin.display(description="cameras", ordering="camera_count")
    def cameras_count(self, hold: Hold) -> int:
        return hold.camera_count  # type: ignore[attr-defined]  # get_queryset annotates it

    @admin.display(boolean=True)
    def active(self, hold: Hold) -> bool:
        return hold.is_active

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Hold | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Hold | None = None) -> bool:
        return False


@admin.register(RecordingStop)
class RecordingStopAdmin(admin.ModelAdmin):
    """The disk guard's warning that lasts: cameras it stopped, shown until space returns."""

    list_display = ["camera", "since", "reason"]
    list_select_related = ["camera"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: RecordingStop | None = None
    ) -> bool:
        return False


class RecordingPolicyInline(admin.StackedInline):
    model = RecordingPolicy
    form = RecordingPolicyForm
    fk_name = "camera"
    max_num = 1
    extra = 0
    verbose_name = "recording policy of its own"
    verbose_name_plural = "recording (none here: the district default applies)"


# The recording app adds its inline to the cameras' admin from above: the cameras app
# knows nothing of recording (layers: devices never import what responders do).
admin.site.unregister(Camera)


def hold_released(hold: Hold) -> str:
    if hold.released_at is None:
        return "in force" if hold.is_active else "lapsed"
    by = hold.released_by.get_username() if hold.released_by else "?"
    return f"released {hold.released_at:%Y-%m-%d %H:%M} by {by}: {hold.release_reason}"


HOLD_COLUMNS = ("hold", "source", "who", "why", "range", "until", "state")


def hold_cells(hold: Hold) -> tuple:
    url = reverse("admin:recording_hold_change", args=[hold.pk])
    return (
        format_html('<a href="{}">{}</a>', url, hold.pk),
        hold.get_source_display(),
        hold_who(hold),
        hold.reason,
        f"{hold.start:%Y-%m-%d %H:%M} to {hold_end(hold)}",
        f"{hold.until:%Y-%m-%d %H:%M}" if hold.until else "until released",
        hold_released(hold),
    )


@admin.register(Camera)
class CameraRecordingAdmin(CameraAdmin):
    inlines = [*CameraAdmin.inlines, RecordingPolicyInline]
    list_display = [*CameraAdmin.list_display, "held"]
    # Read-only fields, not an inline: the camera form posts no extra formset for them.
    readonly_fields = [*CameraAdmin.readonly_fields, "held_footage", "hold_list"]
    fieldsets = [*CameraAdmin.fieldsets, ("Holds", {"fields": ["held_footage", "hold_list"]})]

    @admin.display(description="held footage")
    def held_footage(self, camera: Camera | None) -> str:
        if camera is None or camera.pk is None:
            return "-"
        return filesizeformat(held_bytes_by_camera([camera.pk]).get(camera.pk, 0))

    @admin.display(description="holds on this camera's footage")
    def hold_list(self, camera: Camera | None) -> str:
        if camera is None or camera.pk is None:
            return "-"
        holds = camera.holds.select_related("created_by", "released_by", "incident")
        rows = format_html_join("", "<tr>{}</tr>", (
            (format_html_join("", "<td>{}</td>", ((cell,) for cell in hold_cells(hold))),)
            for hold in holds.order_by("-created_at")
        ))  # fmt: skip
        if not rows:
            return "None"
        head = format_html_join("", "<th>{}</th>", ((column,) for column in HOLD_COLUMNS))
        return format_html(
            "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, rows
        )

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        # The page's held bytes in one query, set on the rows the list then shows.
        changelist = super().get_changelist_instance(request)
        cameras = list(changelist.result_list)
        held = held_bytes_by_camera(camera.pk for camera in cameras)
        for camera in cameras:
            camera.held_bytes = held.get(camera.pk, 0)
        return changelist

    @admin.display(description="held footage")
    def held(self, camera: Camera) -> str:
        return filesizeformat(getattr(camera, "held_bytes", 0))
