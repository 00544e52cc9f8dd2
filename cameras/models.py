from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from encrypted_fields.fields import EncryptedCharField

from maps.models import Placed
from responder.core.access import scope_q
from responder.core.capabilities import Capability

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

STREAM_SCHEMES = ["rtsp", "rtsps", "http", "https"]
validate_stream_url = URLValidator(schemes=STREAM_SCHEMES)


def stream_url_split(url: str) -> tuple[str, str | None, str | None]:
    """The URL without its user:password@, and the username and password it carried."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    return (
        urlunsplit(parts._replace(netloc=host)),
        unquote(username) or None,
        unquote(password) or None,
    )


@dataclass(frozen=True)
class MovedCredentials:
    main: str
    sub: str
    username: str | None
    password: str | None
    carried: bool  # whether a URL carried credentials


def stream_credentials_move(
    *, main: str, sub: str, username: str | None, password: str | None
) -> MovedCredentials:
    """Both URLs without credentials, and the credentials to store (a URL's, else those given).

    Refused when the two URLs, or a URL and the given fields, carry different credentials.
    """
    (main, *main_pair), (sub, *sub_pair) = stream_url_split(main), stream_url_split(sub)
    found = {tuple(pair) for pair in (main_pair, sub_pair) if any(pair)}
    if not found:
        return MovedCredentials(main, sub, username, password, carried=False)
    if len(found) > 1:
        raise ValidationError("The two stream URLs carry different credentials.")
    pair = found.pop()
    if (username or password) and (username or None, password or None) != pair:
        raise ValidationError(
            "The URL carries a username and password that differ from those given apart: "
            "give them once, in the username and password fields."
        )
    return MovedCredentials(main, sub, pair[0], pair[1], carried=True)


def validate_no_credentials(url: str) -> None:
    # URLs are stored in the clear; credentials belong in the encrypted fields.
    if "@" in urlsplit(url).netloc:
        raise ValidationError(
            "Put the camera's username and password in their own fields, not in the URL: "
            "the URL is stored unencrypted."
        )


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
    def visible_to(self, user: User | AnonymousUser, *capabilities: Capability) -> CameraQuerySet:
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
    main_stream_url = models.CharField(
        max_length=500, validators=[validate_stream_url, validate_no_credentials]
    )
    sub_stream_url = models.CharField(
        max_length=500, blank=True, validators=[validate_stream_url, validate_no_credentials]
    )
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
