"""The recording index: what is on disk under RECORDINGS_ROOT, what is missing, what is held.

A segment row exists only for a file that was complete and hashed when it was indexed: the
recorder writes, fsyncs and hashes the file, then inserts the row. A file without a row is
an orphan the sweeper removes; a row without its file is a fault it reports.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone


class RecordingMode(models.TextChoices):
    CONTINUOUS = "continuous", "Continuous"
    EVENTS = "events", "Around events only"
    OFF = "off", "Off"


class RecordingPolicy(models.Model):
    """How one camera is recorded and kept; the row without a camera is the district default.

    A camera without a row of its own follows the default."""

    camera = models.OneToOneField(
        "cameras.Camera",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="recording_policy",
        help_text="Empty: the district default, used by every camera without a policy.",
    )
    mode = models.CharField(
        max_length=12, choices=RecordingMode.choices, default=RecordingMode.CONTINUOUS
    )
    continuous_retention_days = models.PositiveSmallIntegerField(default=30)
    event_retention_days = models.PositiveSmallIntegerField(default=90)
    pre_roll_seconds = models.PositiveSmallIntegerField(default=30)
    post_roll_seconds = models.PositiveSmallIntegerField(default=60)
    event_types = models.JSONField(
        default=list,
        blank=True,
        help_text="Door event types, besides alarms, whose footage events mode keeps.",
    )
    priority = models.PositiveSmallIntegerField(
        default=100,
        help_text="When only held footage is left on a full disk, the lowest stop first.",
    )

    class Meta:
        verbose_name_plural = "recording policies"
        constraints = [
            # One district default: NULL cameras compare equal through the coalesce.
            models.UniqueConstraint(Coalesce("camera", 0), name="recording_policy_one_per_camera")
        ]

    def __str__(self) -> str:
        return f"{self.camera or 'District default'}: {self.get_mode_display()}"


class SegmentKind(models.TextChoices):
    CONTINUOUS = "continuous", "Continuous"
    EVENT = "event", "Event"  # inside an event's pre-roll..post-roll: event retention
    BUFFER = "buffer", "Buffer"  # events mode, not (yet) near an event: the rolling pre-roll


class Segment(models.Model):
    """One closed file of a camera's stream, exactly as the recorder wrote it."""

    camera = models.ForeignKey("cameras.Camera", on_delete=models.PROTECT, related_name="segments")
    path = models.CharField(max_length=300, unique=True, help_text="Under RECORDINGS_ROOT.")
    start = models.DateTimeField()
    end = models.DateTimeField()
    bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, help_text="Of the file as written.")
    codec = models.CharField(max_length=20)  # as FFmpeg names it: h264, hevc
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    # [[seconds from start, byte offset], ...] of every keyframe: byte-range HLS playlists,
    # seeks and thumbnails read the file from there.
    keyframes = models.JSONField(default=list)
    kind = models.CharField(
        max_length=12, choices=SegmentKind.choices, default=SegmentKind.CONTINUOUS
    )
    recorder = models.CharField(max_length=100, help_text="The recorder process that wrote it.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["camera", "start"]
        indexes = [
            models.Index(fields=["camera", "start"]),
            models.Index(fields=["start"]),
            # The events-mode sweeper reads the buffer every 30 s: a few hundred rows among
            # millions, found without scanning the table.
            models.Index(
                fields=["camera", "start"],
                condition=models.Q(kind="buffer"),
                name="recording_segment_buffer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.camera_id} {self.start:%Y-%m-%d %H:%M:%S} ({self.bytes} B)"


class GapReason(models.TextChoices):
    SOURCE_DOWN = "source_down", "Camera unreachable"
    SOURCE_ERROR = "source_error", "Stream error"
    RECORDER_DOWN = "recorder_down", "Recorder stopped"
    DISK_FULL = "disk_full", "Disk full"
    STOPPED = "stopped", "Recording stopped"
    DELETED = "deleted", "Deleted by retention"


class Gap(models.Model):
    """A stretch of a camera's time with no recording, and why; `end` empty while it lasts."""

    camera = models.ForeignKey("cameras.Camera", on_delete=models.CASCADE, related_name="gaps")
    start = models.DateTimeField()
    end = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=20, choices=GapReason.choices)
    detail = models.CharField(max_length=300, blank=True)  # never a URL with credentials

    class Meta:
        ordering = ["camera", "start"]
        indexes = [models.Index(fields=["camera", "start"])]

    def __str__(self) -> str:
        return f"{self.camera_id} {self.start:%Y-%m-%d %H:%M:%S}: {self.reason}"


class RecordingStop(models.Model):
    """The disk guard stopped recording this camera (only held footage was left to delete).

    Recorders skip a camera with a row; the guard deletes the row when space returns."""

    camera = models.OneToOneField(
        "cameras.Camera", on_delete=models.CASCADE, related_name="recording_stop"
    )
    since = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=300)

    def __str__(self) -> str:
        return f"{self.camera}: stopped since {self.since:%Y-%m-%d %H:%M}"


class HoldSource(models.TextChoices):
    MANUAL = "manual", "Placed by a user"
    INCIDENT = "incident", "Incident"
    EXPORT = "export", "Evidence export"


class HoldQuerySet(models.QuerySet):
    def active(self) -> HoldQuerySet:
        now = timezone.now()
        return self.filter(released_at__isnull=True).filter(
            models.Q(until__isnull=True) | models.Q(until__gt=now)
        )


class Hold(models.Model):
    """Footage of these cameras in [start, end] that retention and the disk guard never delete."""

    cameras = models.ManyToManyField("cameras.Camera", related_name="holds")
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.TextField()
    source = models.CharField(max_length=10, choices=HoldSource.choices, default=HoldSource.MANUAL)
    incident = models.ForeignKey(
        "responder.Incident", on_delete=models.PROTECT, null=True, blank=True, related_name="holds"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    until = models.DateTimeField(null=True, blank=True, help_text="Empty: until released.")
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    release_reason = models.TextField(blank=True)

    objects = HoldQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["start", "end"])]

    def __str__(self) -> str:
        return f"Hold {self.pk}: {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        """HoldQuerySet.active, for one row in memory."""
        return self.released_at is None and (self.until is None or self.until > timezone.now())
