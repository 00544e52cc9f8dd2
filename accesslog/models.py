from __future__ import annotations

import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone
from encrypted_fields.fields import EncryptedCharField

from cameras.models import Camera
from maps.models import Placed
from responder.core.access import scope_q
from responder.core.capabilities import Capability

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class SystemKind(models.TextChoices):
    ONGUARD = "onguard", "LenelS2 OnGuard"
    NETBOX = "netbox", "LenelS2 NetBox"
    GENERIC = "generic", "Generic"


class AccessSystem(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    kind = models.CharField(max_length=20, choices=SystemKind.choices)
    # Write-only: encrypted at rest, never in a form; shown once when made or rotated.
    webhook_secret = EncryptedCharField(max_length=200, default=new_webhook_secret, editable=False)
    # While the access system moves to the new secret, the old one verifies until then.
    previous_webhook_secret = EncryptedCharField(
        max_length=200, null=True, blank=True, editable=False
    )
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def webhook_secrets(self) -> list[str]:
        """The secrets a signature may match now: the current one, and the old one
        until its overlap ends."""
        overlapping = self.previous_secret_until and timezone.now() < self.previous_secret_until
        return [self.webhook_secret, *([self.previous_webhook_secret] if overlapping else [])]

    def webhook_secret_rotate(self, *, overlap: timedelta) -> str:
        """A new secret, saved; the current one verifies for `overlap` more."""
        now = timezone.now()
        self.previous_webhook_secret = self.webhook_secret
        self.previous_secret_until = now + overlap
        self.webhook_secret = new_webhook_secret()
        self.secret_rotated_at = now
        self.save()
        return self.webhook_secret


class DoorQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser, *capabilities: Capability) -> DoorQuerySet:
        return self.filter(scope_q(user, *capabilities, building="building"))


class Door(Placed):
    system = models.ForeignKey(AccessSystem, on_delete=models.PROTECT, related_name="doors")
    external_id = models.CharField(max_length=100, help_text="The door's id in its access system.")
    name = models.CharField(max_length=200)
    cameras = models.ManyToManyField(
        Camera, through="DoorCamera", blank=True, related_name="doors"
    )

    objects = DoorQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "external_id"], name="door_external_id_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name


class DoorCamera(models.Model):
    door = models.ForeignKey(Door, on_delete=models.CASCADE, related_name="door_cameras")
    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveSmallIntegerField(default=0, help_text="0 is the nearest camera.")

    class Meta:
        ordering = ["rank"]
        constraints = [
            models.UniqueConstraint(fields=["door", "camera"], name="door_camera_unique")
        ]

    def __str__(self) -> str:
        return f"{self.door} ← {self.camera} (#{self.rank})"


class EventType(models.TextChoices):
    DOOR_FORCED = "door_forced", "Door forced"
    DOOR_HELD = "door_held", "Door held open"
    ACCESS_DENIED = "access_denied", "Access denied"
    ACCESS_GRANTED = "access_granted", "Access granted"
    INTERCOM_CALL = "intercom_call", "Intercom call"
    TAMPER = "tamper", "Tamper"
    DURESS = "duress", "Duress"


class Severity(models.TextChoices):
    ALARM = "alarm"
    WARNING = "warning"
    NOTICE = "notice"
    INFO = "info"


SEVERITY_OF = {
    EventType.DOOR_FORCED: Severity.ALARM,
    EventType.DURESS: Severity.ALARM,
    EventType.TAMPER: Severity.ALARM,
    EventType.DOOR_HELD: Severity.WARNING,
    EventType.ACCESS_DENIED: Severity.WARNING,
    EventType.INTERCOM_CALL: Severity.NOTICE,
    EventType.ACCESS_GRANTED: Severity.INFO,
}


class EventQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> EventQuerySet:
        """Events of doors the user may see alarms for. Unmapped doors: managers only."""
        return self.filter(scope_q(user, Capability.ALARMS, building="door__building"))


class Event(models.Model):
    """An access-control event. `seq` orders delivery; the id is the event's own."""

    seq = models.BigIntegerField(unique=True, editable=False)
    system = models.ForeignKey(AccessSystem, on_delete=models.PROTECT, related_name="events")
    source_event_id = models.CharField(max_length=200)
    type = models.CharField(max_length=30, choices=EventType.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    # Kept even when the door is unknown: an event is never lost.
    door = models.ForeignKey(
        Door, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    door_external_id = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    credential = models.CharField(max_length=200, blank=True)
    person = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    # Older than ALARM_MAX_AGE_SECONDS when it arrived (a backfill, a controller's buffer
    # after an outage): stored and shown, never rung, pushed or made an incident.
    late = models.BooleanField(default=False)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "source_event_id"], name="event_source_id_unique"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.get_type_display()} at {self.door or self.door_external_id}"


class EventAck(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="acks")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="event_acks"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at"]
        constraints = [models.UniqueConstraint(fields=["event", "user"], name="event_ack_unique")]

    def __str__(self) -> str:
        return f"{self.event} acknowledged by {self.user}"


class ConnectorCursor(models.Model):
    """Where a connector's feed stands, so a restart neither misses nor repeats an event.

    A JSON document whose shape is the connector's own (docs/CONNECTORS.md): per panel
    for OnGuard, per history for NetBox; empty before the first start.
    """

    system = models.OneToOneField(AccessSystem, on_delete=models.CASCADE, related_name="cursor")
    position = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.system}: {self.position or 'start'}"


class ConnectorHealth(models.Model):
    """What district IT sees of a connector: when it last heard its controller, its errors."""

    system = models.OneToOneField(AccessSystem, on_delete=models.CASCADE, related_name="health")
    # Any answer from the controller (a page, a ping, a keep-alive): it is reachable.
    last_contact_at = models.DateTimeField(null=True, blank=True)
    # The last door event the controller sent (its own time and when it reached us).
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_event_received_at = models.DateTimeField(null=True, blank=True)
    # Times of recent errors, newest last, kept for an hour.
    errors = models.JSONField(default=list, blank=True)
    last_error = models.TextField(blank=True)
    silence_warned_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "connector health"
        verbose_name_plural = "connector health"

    def __str__(self) -> str:
        return f"{self.system}: last event {self.last_event_at or 'never'}"
