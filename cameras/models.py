from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from encrypted_fields.fields import EncryptedCharField

from maps.models import Placed
from responder.capabilities import Capability

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

STREAM_SCHEMES = ["rtsp", "rtsps", "http", "https"]
validate_stream_url = URLValidator(schemes=STREAM_SCHEMES)


class Tag(models.Model):
    slug = models.SlugField(max_length=50, unique=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Vendor(models.TextChoices):
    AXIS = "axis", "Axis"
    MOBOTIX = "mobotix", "Mobotix"
    OTHER = "other", "Other"


class CameraQuerySet(models.QuerySet):
    def visible_to(
        self, user: AbstractBaseUser | AnonymousUser, *capabilities: Capability
    ) -> CameraQuerySet:
        from responder.access import scope_q

        q = scope_q(user, *capabilities, building="building", tags="tags")
        # Through the tag join a camera matches once per tag: select ids, not rows.
        return self.filter(id__in=Camera.objects.filter(q).values("id"))

    def enabled(self) -> CameraQuerySet:
        return self.filter(enabled=True)


class Camera(Placed):
    name = models.CharField(
        max_length=200, help_text="The name people use: “HS Main Entrance – Lobby”."
    )
    vendor = models.CharField(max_length=20, choices=Vendor.choices, default=Vendor.AXIS)
    model = models.CharField(max_length=100, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="cameras")
    heading = models.FloatField(
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(360)],
        help_text="Degrees clockwise from the top of the plan.",
    )
    field_of_view = models.FloatField(
        default=90, validators=[MinValueValidator(1), MaxValueValidator(360)], help_text="Degrees."
    )
    main_stream_url = models.CharField(max_length=500, validators=[validate_stream_url])
    sub_stream_url = models.CharField(max_length=500, blank=True, validators=[validate_stream_url])
    # Encrypted at rest; never serialised by any API.
    username = EncryptedCharField(max_length=200, blank=True, null=True)
    password = EncryptedCharField(max_length=200, blank=True, null=True)
    enabled = models.BooleanField(default=True)

    objects = CameraQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["building", "name"], name="camera_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class StreamKind(models.TextChoices):
    MAIN = "main", "Main stream"
    SUB = "sub", "Sub stream"


class HealthStatus(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"


class CameraHealth(models.Model):
    """What the last probe (or live session) learnt about one of a camera's streams."""

    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="health")
    stream = models.CharField(max_length=10, choices=StreamKind.choices, default=StreamKind.MAIN)
    status = models.CharField(
        max_length=10, choices=HealthStatus.choices, default=HealthStatus.UNKNOWN
    )
    reason = models.CharField(max_length=300, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    last_frame_at = models.DateTimeField(null=True, blank=True)
    codec = models.CharField(max_length=20, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    bitrate = models.PositiveIntegerField(null=True, blank=True, help_text="Bits per second.")

    class Meta:
        verbose_name_plural = "camera health"
        constraints = [
            models.UniqueConstraint(fields=["camera", "stream"], name="camera_health_unique")
        ]

    def __str__(self) -> str:
        return f"{self.camera} ({self.stream}): {self.status}"
