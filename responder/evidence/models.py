"""Evidence exports (a zip anyone can verify) and the links that share them with police.

An export's zip is written under EVIDENCE_ROOT only once complete (a temporary file
renamed into place): a row says `ready` only when its file is whole and signed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

from cameras.models import Camera
from responder.core.capabilities import Capability

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


class ExportStatus(models.TextChoices):
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class ExportQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> ExportQuerySet:
        """Exports whose every camera the user may export: one camera outside hides it."""
        allowed = Camera.objects.visible_to(user, Capability.EXPORT).values("id")
        return self.exclude(cameras__in=Camera.objects.exclude(id__in=allowed))

    def building(self) -> ExportQuerySet:
        return self.filter(status=ExportStatus.BUILDING)


class Export(models.Model):
    cameras = models.ManyToManyField("cameras.Camera", related_name="exports")
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.TextField()
    incident = models.ForeignKey(
        "responder.Incident",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="exports",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=10, choices=ExportStatus.choices, default=ExportStatus.BUILDING
    )
    progress = models.FloatField(default=0, help_text="0 to 1 while building.")
    bytes = models.PositiveBigIntegerField(null=True, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    failure = models.TextField(blank=True)
    path = models.CharField(max_length=300, blank=True, help_text="The zip, under EVIDENCE_ROOT.")
    hold = models.OneToOneField(
        "recording.Hold", on_delete=models.PROTECT, null=True, blank=True, related_name="export"
    )
    # The id of the Celery task building it and when it last reported: a build whose
    # worker died (kill -9) stops reporting, and the sweep fails it.
    task_id = models.CharField(max_length=50, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ExportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Export {self.pk} ({self.status})"


class ShareQuerySet(models.QuerySet):
    def usable(self) -> ShareQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class Share(models.Model):
    """A capability URL: whoever holds the token sees the export, until expiry or revocation.

    Only the token's SHA-256 is stored: the database leaks no working link."""

    export = models.ForeignKey(Export, on_delete=models.CASCADE, related_name="shares")
    token_sha256 = models.CharField(max_length=64, unique=True)
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    objects = ShareQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Share {self.pk} of export {self.export_id}"

    @property
    def usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()
