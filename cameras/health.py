"""Camera health: what probes and live sessions learn, and the offline event."""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from cameras import media
from cameras.models import Camera, CameraHealth, HealthStatus, StreamKind

# Sent after commit when a stream goes offline, with camera, stream and reason.
# responder/alarms/camera_notices.py turns it into a warning on /ws/events for those who may see it.
camera_went_offline = Signal()


def camera_health_record(
    *,
    camera: Camera,
    stream: StreamKind,
    info: media.StreamInfo | None = None,
    reason: str = "",
    detail: str = "",
) -> CameraHealth:
    """Record a probe: online with the stream's figures, or offline with the reason.

    Health keeps FFmpeg's detail for IT; the offline event carries the plain reason only.
    """
    now = timezone.now()
    with transaction.atomic():
        health, _ = CameraHealth.objects.select_for_update().get_or_create(
            camera=camera, stream=stream
        )
        was = health.status
        health.checked_at = now
        if info is None:
            full = f"{reason} ({detail})" if detail else reason
            health.status, health.reason = HealthStatus.OFFLINE, full[:300]
        else:
            health.status, health.reason, health.last_frame_at = HealthStatus.ONLINE, "", now
            health.codec, health.width, health.height = info.codec, info.width, info.height
            health.fps, health.bitrate = info.fps, info.bitrate
        health.save()
        if health.status == HealthStatus.OFFLINE and was != HealthStatus.OFFLINE:
            transaction.on_commit(
                lambda: camera_went_offline.send(
                    sender=CameraHealth, camera=camera, stream=stream, reason=reason
                )
            )
    return health


def camera_health_failed(
    *, camera: Camera, stream: StreamKind, error: media.SourceError
) -> CameraHealth:
    return camera_health_record(
        camera=camera, stream=stream, reason=error.reason, detail=error.detail
    )


def camera_probe(*, camera: Camera, timeout: float) -> list[CameraHealth]:
    results = []
    streams = ((StreamKind.MAIN, camera.main_stream_url), (StreamKind.SUB, camera.sub_stream_url))
    for kind, url in streams:
        if not url:
            continue
        try:
            info = media.source_probe(
                media.url_with_credentials(url, camera.username, camera.password), timeout=timeout
            )
        except media.SourceError as error:
            results.append(camera_health_failed(camera=camera, stream=kind, error=error))
        else:
            results.append(camera_health_record(camera=camera, stream=kind, info=info))
    return results
