from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from responder.capabilities import Capability


class GrantQuerySet(models.QuerySet):
    def active(self) -> GrantQuerySet:
        now = timezone.now()
        return self.filter(
            models.Q(starts_at__isnull=True) | models.Q(starts_at__lte=now),
            models.Q(ends_at__isnull=True) | models.Q(ends_at__gt=now),
        )

    def for_user(self, user: settings.AUTH_USER_MODEL) -> GrantQuerySet:
        return self.filter(models.Q(user=user) | models.Q(group__in=user.groups.all()))


class Grant(models.Model):
    """Capabilities over a scope, for a group or a user.

    The scope is the whole district when campus, building and tags are all empty;
    otherwise everything that matches each one that is set (a tag set matches any tag).
    """

    group = models.ForeignKey(
        Group, on_delete=models.CASCADE, null=True, blank=True, related_name="grants"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="grants",
    )
    capabilities = models.JSONField(default=list)
    campus = models.ForeignKey(
        "maps.Campus", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    building = models.ForeignKey(
        "maps.Building", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    tags = models.ManyToManyField("cameras.Tag", blank=True, related_name="+")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    # Set on the time-boxed grants an open incident gives its responder groups.
    incident = models.ForeignKey(
        "Incident", on_delete=models.CASCADE, null=True, blank=True, related_name="grants"
    )

    objects = GrantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(group__isnull=True) ^ models.Q(user__isnull=True),
                name="grant_has_one_grantee",
            )
        ]

    def __str__(self) -> str:
        return f"{self.grantee}: {', '.join(self.capabilities)} over {self.scope_label}"

    @property
    def grantee(self) -> object:
        return self.group or self.user

    @property
    def scope_label(self) -> str:
        parts = [str(p) for p in (self.campus, self.building) if p]
        if self.pk:
            parts += [f"#{tag}" for tag in self.tags.all()]
        return ", ".join(parts) or "the district"

    def clean(self) -> None:
        unknown = set(self.capabilities) - set(Capability.values)
        if unknown:
            raise ValidationError({"capabilities": f"Unknown: {', '.join(sorted(unknown))}."})
        if self.campus and self.building and self.building.campus_id != self.campus_id:
            raise ValidationError({"building": "The building is not on that campus."})


class Outcome(models.TextChoices):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs) -> int:
        raise PermissionError("The audit log is append-only.")

    def delete(self) -> tuple[int, dict]:
        raise PermissionError("The audit log is append-only.")


class AuditEntry(models.Model):
    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_constraint=False,
        related_name="+",
    )
    # Kept apart from the foreign key so the row still says who after a user is removed.
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise PermissionError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs) -> tuple[int, dict]:
        raise PermissionError("The audit log is append-only.")


class SignInState(models.Model):
    """Failed sign-ins in a row, and the lock they lead to."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sign_in_state"
    )
    failures = models.PositiveIntegerField(default=0)
    first_failure_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user}: {'locked' if self.locked_at else f'{self.failures} failures'}"


class IncidentStatus(models.TextChoices):
    OPEN = "open"
    CLOSED = "closed"


class Incident(models.Model):
    campus = models.ForeignKey("maps.Campus", on_delete=models.PROTECT, related_name="incidents")
    title = models.CharField(max_length=200)
    status = models.CharField(
        max_length=10, choices=IncidentStatus.choices, default=IncidentStatus.OPEN
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when a rule opened it from an alarm.",
    )
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    source_event = models.ForeignKey(
        "accesslog.Event", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    responder_groups = models.ManyToManyField(Group, blank=True, related_name="incidents")
    responders = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="assigned_incidents"
    )
    grant_hours = models.PositiveSmallIntegerField(
        default=4, help_text="Emergency access ends at closing or after this many hours."
    )
    # The reach of its grants: the campus, or one building of it when the opener's own
    # incidents scope covers only that building (responder/incidents.py: reach_covered).
    building = models.ForeignKey(
        "maps.Building",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: the whole campus.",
    )
    grants_end_at = models.DateTimeField(
        help_text="When its emergency access ends, unless it closes first (extensions move it)."
    )

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return self.title


class IncidentEntry(models.Model):
    """One line of an incident's timeline: an event, an acknowledgement, a note, a change."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=20)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    event = models.ForeignKey(
        "accesslog.Event", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "incident entries"

    def __str__(self) -> str:
        return f"{self.incident}: {self.kind} at {self.at:%H:%M:%S}"


class PushSubscription(models.Model):
    """A device's Web Push subscription (the PushSubscription JSON of the browser)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions"
    )
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user}: {self.endpoint[:60]}"


class PendingPush(models.Model):
    """An event whose push ingest could not queue: the broker did not answer."""

    event = models.OneToOneField("accesslog.Event", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Push pending for event {self.event_id}"


class IncidentRule(models.Model):
    """An alarm that opens an incident on its campus when none is open there."""

    name = models.CharField(max_length=200)
    event_types = models.JSONField(
        default=list,
        help_text='Event types that open an incident, e.g. ["duress", "door_forced"].',
    )
    campus = models.ForeignKey(
        "maps.Campus",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: every campus.",
    )
    responder_groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="+",
        help_text="Only responder roles with emergency access receive grants.",
    )
    grant_hours = models.PositiveSmallIntegerField(default=4)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.grant_hours > settings.INCIDENT_MAX_HOURS:
            limit = settings.INCIDENT_MAX_HOURS
            raise ValidationError({"grant_hours": f"At most {limit} (INCIDENT_MAX_HOURS)."})


class ResponderRole(models.Model):
    """Whether incidents may give a role group emergency video (police and fire by default).

    IT sets it in the admin; a group without a row has no emergency access.
    """

    group = models.OneToOneField(
        Group, on_delete=models.CASCADE, primary_key=True, related_name="responder_role"
    )
    emergency_access = models.BooleanField(
        default=False,
        help_text="Incidents may name this group, and assign its members, for time-boxed "
        "live and recorded video.",
    )

    def __str__(self) -> str:
        access = "emergency access" if self.emergency_access else "no emergency access"
        return f"{self.group}: {access}"


class EmergencyGrant(Grant):
    """The grants incidents made, for IT's list in the admin."""

    class Meta:
        proxy = True
        ordering = ["-starts_at", "-id"]
