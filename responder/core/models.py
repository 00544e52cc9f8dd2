from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone
from django_otp.models import Device, TimestampMixin

from responder.core.capabilities import Capability
from responder.core.chain import GENESIS, canonical, entry_content


class GrantQuerySet(models.QuerySet):
    def active(self) -> GrantQuerySet:
        now = timezone.now()
        return self.filter(
            models.Q(starts_at__isnull=True) | models.Q(starts_at__lte=now),
            models.Q(ends_at__isnull=True) | models.Q(ends_at__gt=now),
        )

    def for_user(self, user: User) -> GrantQuerySet:
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

    def bulk_create(self, *args, **kwargs) -> list:
        raise PermissionError("Audit rows are appended one at a time, each chained to the last.")


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
    # The chain (responder/core/chain.py): editing or deleting a row breaks it there.
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    hash = models.CharField(max_length=64, blank=True, editable=False)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise PermissionError("The audit log is append-only.")
        # Hashed as the database will give it back: IPv6 in its normal form, JSON types.
        self.ip = self._meta.get_field("ip").to_python(self.ip)
        self.details = json.loads(canonical(self.details))
        with transaction.atomic(savepoint=False):
            self.prev_hash, self.hash = _chain_append(entry_content(self))
            super().save(*args, **kwargs)

    def delete(self, *args, **kwargs) -> tuple[int, dict]:
        raise PermissionError("The audit log is append-only.")


class AuditChainHead(models.Model):
    """The hash of the last audit row: its one row is the lock every append takes.

    An append moves it in one UPDATE (the row lock, held until the appending transaction
    commits, serialises appends: two writers never chain to the same row). audit_verify
    compares it with the last row, so deleting rows from the end is found too."""

    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return self.hash


_HEAD = 1
_ADVANCE = {
    # SET's right-hand sides read the row as it was: prev_hash takes the old hash.
    "postgresql": "UPDATE responder_auditchainhead SET prev_hash = hash, "
    "hash = encode(sha256(convert_to(hash || %s, 'UTF8')), 'hex') WHERE id = %s "
    "RETURNING prev_hash, hash",
    # SHA256() is Django's own function on every SQLite connection; one writer at a time.
    "sqlite": "UPDATE responder_auditchainhead SET prev_hash = hash, "
    "hash = SHA256(hash || %s) WHERE id = %s RETURNING prev_hash, hash",
}


def _chain_append(content: str) -> tuple[str, str]:
    """(prev_hash, hash) of the row being appended: one small query, the head's UPDATE."""
    with connection.cursor() as cursor:
        cursor.execute(_ADVANCE[connection.vendor], [content, _HEAD])
        row = cursor.fetchone()
    if row is None:  # a new database (or one a test flushed): the head starts at the tail
        last = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
        AuditChainHead.objects.get_or_create(
            pk=_HEAD, defaults={"prev_hash": "", "hash": last or GENESIS}
        )
        return _chain_append(content)
    return row[0], row[1]


class SignInStateQuerySet(models.QuerySet):
    def locked(self) -> SignInStateQuerySet:
        return self.filter(locked_at__gt=timezone.now() - settings.LOGIN_LOCK)


class SignInState(models.Model):
    """Failed sign-ins in a row under one name, and the lock they lead to.

    Kept per name typed, known or not, so that an unknown name is counted, locked and
    answered exactly like a real one: a lock says nothing about who exists.
    """

    username = models.CharField(max_length=150, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="sign_in_states",
    )
    password_failures = models.PositiveIntegerField(default=0)
    # Apart from wrong passwords: wrong codes after a right password mean it is known.
    code_failures = models.PositiveIntegerField(default=0)
    first_failure_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)

    objects = SignInStateQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.username}: {'locked' if self.is_locked else 'not locked'}"

    @property
    def is_locked(self) -> bool:
        return self.locked_until is not None and timezone.now() < self.locked_until

    @property
    def locked_until(self) -> datetime | None:
        return self.locked_at + settings.LOGIN_LOCK if self.locked_at else None


class EnrolmentCodeQuerySet(models.QuerySet):
    def usable(self) -> EnrolmentCodeQuerySet:
        return self.filter(used_at__isnull=True, expires_at__gt=timezone.now())


class EnrolmentCode(models.Model):
    """A one-time code district IT gives a user for their first second-factor device.

    Only its SHA-256 is kept: the code is random (60 bits) and shown once, in the admin.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrolment_codes"
    )
    digest = models.CharField(max_length=64, unique=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    objects = EnrolmentCodeQuerySet.as_manager()

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        state = "used" if self.used_at else f"until {self.expires_at:%Y-%m-%d %H:%M}"
        return f"Enrolment code for {self.user} ({state})"


class BackupCodeDevice(TimestampMixin, Device):
    """Backup codes: each works once. Stored as SHA-256 digests, never as issued.

    The codes carry 80 random bits, so a fast hash is enough against a stolen database;
    a slow password hasher would cost seconds per sign-in across ten codes.
    """

    class Meta:
        verbose_name = "backup codes"
        verbose_name_plural = "backup codes"

    def verify_token(self, token: str) -> bool:
        digest = code_digest(token)
        match = None
        # Every code compared, in constant time each, whatever matched before.
        for code in self.codes.all():
            if hmac.compare_digest(code.digest, digest):
                match = code
        if match is None:
            return False
        match.delete()
        self.set_last_used_timestamp()
        return True


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"A backup code of {self.device.user}"


def code_digest(code: str) -> str:
    """The digest kept for a one-time code: case, spaces and dashes do not count."""
    normal = code.strip().lower().replace(" ", "").replace("-", "")
    return hashlib.sha256(normal.encode()).hexdigest()


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
    # incidents scope covers only that building (responder/incidents/services.py: reach_covered).
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


class EntryKind:
    OPENED = "opened"
    CLOSED = "closed"
    EVENT = "event"
    NOTE = "note"
    ASSIGNED = "assigned"
    GRANT_STARTED = "grant_started"
    GRANT_ENDED = "grant_ended"
    EXTENDED = "extended"


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
