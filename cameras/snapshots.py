from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

from cameras import media
from cameras.models import Camera

# As long as the Retry-After a failed snapshot answers with: a client that waits as told
# finds the camera asked again, one that does not finds the failure remembered.
FAILURE_SECONDS = 10
_GRABBING = "grabbing"


def camera_snapshot(*, camera: Camera) -> bytes:
    """A small JPEG, from cache if a recent one exists (tiles poll; cameras should not).

    One request at a time reads the camera; the others wait for its image or its failure,
    and a failure is cached too: a burst of requests for a dead camera costs one connection.
    """
    key = f"cameras:snapshot:{camera.pk}"
    # A grab connects, then reads: each may take CAMERA_TIMEOUT.
    patience = settings.CAMERA_TIMEOUT * 2 + 1
    deadline = time.monotonic() + patience
    # The claim to grab and the grab's outcome are one key, taken with SET NX: a separate
    # lock, freed after the outcome was written, let a request that had just found no
    # outcome take the freed lock and contact the camera a second time.
    while (cached := cache.get(key)) is None or cached == _GRABBING:
        if cached is None and cache.add(key, _GRABBING, patience):
            return _grab(camera, key)
        if time.monotonic() > deadline:
            raise media.SourceError("The camera did not answer in time.")
        time.sleep(0.1)
    if isinstance(cached, dict):
        raise media.SourceError(cached["failed"])
    return cached


def _grab(camera: Camera, key: str) -> bytes:
    url = camera.sub_stream_url or camera.main_stream_url
    try:
        image = media.snapshot_grab(
            media.url_with_credentials(url, camera.username, camera.password),
            timeout=settings.CAMERA_TIMEOUT,
        )
    except media.SourceError as error:
        cache.set(key, {"failed": error.reason}, FAILURE_SECONDS)
        raise
    except BaseException:
        cache.delete(key)  # no outcome to share: the next request tries again
        raise
    cache.set(key, image, settings.SNAPSHOT_CACHE_SECONDS)
    return image
