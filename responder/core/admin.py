import csv
import itertools

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.contrib.auth.models import User as AuthUser  # the type of get_user_model()
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from responder.core.access import signed_in
from responder.core.capabilities import Capability
from responder.core.models import (
    AuditEntry,
    BackupCodeDevice,
    EmergencyGrant,
    EnrolmentCode,
    Grant,
    Incident,
    IncidentEntry,
    IncidentRule,
    ResponderRole,
    SignInState,
)
from responder.core.signin import account_is_locked, account_unlock, enrolment_code_issue

User = get_user_model()


class GrantForm(forms.ModelForm):
    capabilities = forms.MultipleChoiceField(
        choices=Capability.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Grant
        fields = [
            "group", "user", "capabilities", "campus", "building", "tags",
            "starts_at", "ends_at", "note",
        ]  # fmt: skip


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    form = GrantForm
    list_display = ["__str__", "group", "user", "campus", "building", "starts_at", "ends_at"]
    list_filter = ["group", "campus", "incident"]
    search_fields = ["group__name", "user__username", "note"]
    autocomplete_fields = ["user", "group", "campus", "building", "tags"]
    readonly_fields = ["incident"]


class GrantInline(admin.TabularInline):
    model = Grant
    form = GrantForm
    fields = ["capabilities", "campus", "building", "tags", "starts_at", "ends_at", "note"]
    autocomplete_fields = ["campus", "building", "tags"]
    extra = 0


class SignInStateInline(admin.StackedInline):
    model = SignInState
    fields = ("username", "password_failures", "code_failures", "first_failure_at", "locked_at")
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0


class EnrolmentCodeInline(admin.TabularInline):
    model = EnrolmentCode
    fk_name = "user"
    fields = ("issued_at", "issued_by", "expires_at", "used_at")
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0


admin.site.unregister(Group)
admin.site.unregister(User)
# Backup codes are BackupCodeDevice now, kept as digests; the old clear-text ones are gone.
admin.site.unregister(StaticDevice)
admin.site.unregister(TOTPDevice)


class ResponderRoleInline(admin.StackedInline):
    model = ResponderRole
    can_delete = False
    verbose_name_plural = "responder role"


@admin.register(Group)
class ResponderGroupAdmin(GroupAdmin):
    inlines = [GrantInline, ResponderRoleInline]


@admin.register(User)
class ResponderUserAdmin(UserAdmin):
    inlines = [SignInStateInline, EnrolmentCodeInline, GrantInline]
    # The stubs type UserAdmin's attributes per instance; these are its class's own.
    list_display = [*UserAdmin.list_display, "is_active", "locked"]  # type: ignore[misc]
    list_filter = [*UserAdmin.list_filter, "sign_in_states__locked_at"]
    actions = ["unlock", "issue_enrolment_code"]

    @admin.display(boolean=True)
    def locked(self, user: AuthUser) -> bool:
        return account_is_locked(user)

    @admin.action(description="Unlock the selected accounts")
    def unlock(self, request: HttpRequest, queryset: QuerySet) -> None:
        for user in queryset:
            account_unlock(user=user, by=signed_in(request.user), request=request)
        self.message_user(request, f"Unlocked {queryset.count()} account(s).", messages.SUCCESS)

    @admin.action(description="Issue an enrolment code (first second-factor device)")
    def issue_enrolment_code(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse:
        # Rendered in this answer only (the admin marks it no-store): never in a message,
        # a cookie or the database.
        codes = [
            (user, enrolment_code_issue(user=user, by=signed_in(request.user), request=request))
            for user in queryset
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Enrolment codes",
            "codes": codes,
            "hours": settings.ENROLMENT_CODE_HOURS,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/responder/enrolment_codes.html", context)


@admin.register(TOTPDevice)
class ResponderTOTPDeviceAdmin(TOTPDeviceAdmin):
    """django-otp's, without its key and QR pages; devices are added by enrolment only."""

    def get_urls(self) -> list:
        return super(TOTPDeviceAdmin, self).get_urls()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(BackupCodeDevice)
class BackupCodeDeviceAdmin(admin.ModelAdmin):
    list_display = ["user", "name", "codes_left", "created_at", "last_used_at"]
    search_fields = ["user__username"]
    fields = ["user", "name", "confirmed", "codes_left", "created_at", "last_used_at"]
    readonly_fields = ["user", "codes_left", "created_at", "last_used_at"]

    @admin.display(description="codes left")
    def codes_left(self, device: BackupCodeDevice) -> int:
        return device.codes.count()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class IncidentEntryInline(admin.TabularInline):
    model = IncidentEntry
    readonly_fields = ["at", "kind", "user", "event", "text"]
    can_delete = False
    extra = 0


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ["title", "campus", "status", "opened_at", "closed_at"]
    list_filter = ["status", "campus"]
    inlines = [IncidentEntryInline]
    readonly_fields = ["opened_by", "opened_at", "closed_at", "source_event", "grants_end_at"]


class Echo:
    def write(self, value: str) -> str:
        return value


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "username", "action", "object_repr", "outcome", "ip"]
    list_filter = ["action", "outcome", ("at", admin.DateFieldListFilter)]
    search_fields = ["username", "action", "object_repr", "object_id", "ip"]
    date_hierarchy = "at"
    actions = ["export_csv"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict:
        # Keep the export though the model is read-only (the stock delete action is gone).
        return {
            name: action
            for name, action in super().get_actions(request).items()
            if name == "export_csv"
        }

    @admin.action(description="Export the selected entries as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse:
        return audit_csv_response(queryset)

    def get_urls(self) -> list:
        export = path("export/", self.admin_site.admin_view(self.export_view), name="audit_export")
        return [export, *super().get_urls()]

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """The whole filtered list as CSV: the changelist's filters, without its paging."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        return audit_csv_response(changelist.get_queryset(request))


CSV_COLUMNS = [
    "at", "username", "action", "object_type", "object_id", "object_repr",
    "ip", "user_agent", "outcome", "details", "id", "prev_hash", "hash",
]  # fmt: skip


def audit_csv_response(queryset: QuerySet) -> StreamingHttpResponse:
    writer = csv.writer(Echo())
    rows = (
        [
            entry.at.isoformat(timespec="milliseconds"),
            *[getattr(entry, c) for c in CSV_COLUMNS[1:]],
        ]
        for entry in queryset.order_by("at", "id").iterator()
    )
    lines = (writer.writerow(row) for row in itertools.chain([CSV_COLUMNS], rows))
    response = StreamingHttpResponse(lines, content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response


@admin.register(IncidentRule)
class IncidentRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "campus", "enabled", "grant_hours"]
    filter_horizontal = ["responder_groups"]

    def formfield_for_manytomany(
        self, db_field: models.ManyToManyField, request: HttpRequest, **kwargs
    ) -> forms.ModelMultipleChoiceField | None:
        # Only the responder roles IT marks for emergency access (ResponderRole).
        if db_field.name == "responder_groups":
            kwargs["queryset"] = Group.objects.filter(responder_role__emergency_access=True)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(ResponderRole)
class ResponderRoleAdmin(admin.ModelAdmin):
    list_display = ["group", "emergency_access"]
    list_editable = ["emergency_access"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows made only through audited paths: shown, never added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(EmergencyGrant)
class EmergencyGrantAdmin(ReadOnlyAdmin):
    """Every grant an incident made, newest first: what IT must be able to see at once."""

    list_display = [
        "grantee", "scope_label", "capabilities", "incident", "opened_by",
        "starts_at", "ends_at", "in_force",
    ]  # fmt: skip
    list_filter = ["incident__status", "incident__campus"]
    search_fields = ["group__name", "user__username", "incident__title", "note"]
    list_select_related = ["group", "user", "campus", "building", "incident__opened_by"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(incident__isnull=False)

    @admin.display(description="opened by")
    def opened_by(self, grant: Grant) -> str:
        opened_by = grant.incident and grant.incident.opened_by  # incident grants only
        return str(opened_by or "an alarm rule")

    @admin.display(boolean=True, description="in force")
    def in_force(self, grant: Grant) -> bool:
        now = timezone.now()
        return (grant.starts_at is None or grant.starts_at <= now) and (
            grant.ends_at is None or grant.ends_at > now
        )
