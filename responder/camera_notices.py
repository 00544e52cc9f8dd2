"""A camera stream going offline is a warning on /ws/events for those who may watch it.

cameras/health.py sends `camera_went_offline` after its commit; the frame is encoded
here once, and every daphne process hands it to its sockets whose camera scope covers it.
"""

from __future__ import annotations

import re

from django.dispatch import receiver
from django.utils import timezone

from cameras.health import camera_went_offline
from cameras.models import Camera, StreamKind
from responder.events import CameraFrame, broadcast, encode

# Stream URLs (rtsp://user:pass@host/...) and bare user:pass@host: PyAV's errors quote the
# URL it opened, credentials included. Quotes and brackets left empty go too.
_URL = re.compile(
    r"""['"]?(?:\b[a-z][a-z0-9+.-]*://|[^\s'"/@:()<>\[\]]+:[^\s'"/@]*@)[^\s'"()<>\[\]]*['"]?""",
    re.IGNORECASE,
)
_EMPTY = re.compile(r"\(\s*\)|\[\s*\]|<\s*>")


def reason_public(reason: str) -> str:
    """The reason without any URL or credentials, as viewers may read it."""
    text = _EMPTY.sub("", _URL.sub("", reason))
    text = re.sub(r"\s+", " ", text).strip(" :;,-")
    return text[:300] or "The camera cannot be reached."


def camera_offline_frame(camera: Camera, stream: StreamKind, reason: str) -> CameraFrame:
    return {
        "type": "camera",
        "severity": "warning",
        "state": "offline",
        "camera": {
            "id": camera.pk,
            "name": camera.name,
            "building": camera.building_id,
            "floor": camera.floor_id,
        },
        "stream": StreamKind(stream).value,
        "reason": reason_public(reason),
        "at": timezone.now().isoformat(),
    }


@receiver(camera_went_offline)
def camera_offline_announce(
    sender: type, camera: Camera, stream: StreamKind, reason: str, **kwargs: object
) -> None:
    frame = encode(camera_offline_frame(camera, stream, reason))
    broadcast("cameras", {"camera": camera.pk, "frame": frame})
