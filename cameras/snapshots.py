from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from cameras import media
from cameras.models import Camera


def camera_snapshot(*, camera: Camera) -> bytes:
    """A small JPEG, from cache if a recent one exists (tiles poll; cameras should not)."""
    key = f"cameras:snapshot:{camera.pk}"
    image = cache.get(key)
    if image is None:
        url = camera.sub_stream_url or camera.main_stream_url
        image = media.snapshot_grab(
            media.url_with_credentials(url, camera.username, camera.password),
            timeout=settings.CAMERA_TIMEOUT,
        )
        cache.set(key, image, settings.SNAPSHOT_CACHE_SECONDS)
    return image
