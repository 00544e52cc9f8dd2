"""A camera stream going offline is a warning on /ws/events for those who may watch it.

cameras/health.py sends `camera_went_offline` after its commit (so the announcement goes at once); the frame is encoded
here once, and every daphne process hands it to its sockets whose camera scope covers it.
"""

from __future__ import annotations

import re
from typing import Literal, cast

from django.dispatch import receiver
from django.utils import timezone

from cameras.health import camera_went_offline
from cameras.models import Camera, StreamKind
from responder.alarms.events import CameraFrame
from responder.core.announce import announce_on_commit, encode
from responder.core.redact import credentials_strip

# Stream URLs (rtsp://user:pass@host/...) and bare user:pass@host: PyAV's errors quote the
# URL it opened, credentials included. Quotes and brackets left empty go too.
_URL = re.compile(
    r"""['"]?(?:\b[a-z][a-z0-9+.-]*://|[^\s'"/@:()<>\[\]]+:[^\s'"/@]*@)[^\s'"()<>\[\]]*['"]?""",
    re.IGNORECASE,
)
_EMPTY = re.compile(r"\(\s*\)|\[\s*\]|<\s*>")


def reason_public(reason: str) -> str:
    """The reason without any URL or credentials, as viewers may read it."""
    # Addresses go first (viewers see none), then any credentials left around them.
    text = credentials_strip(_EMPTY.sub("", _URL.sub("", reason)))
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
        "stream": cast(Literal["main", "sub"], StreamKind(stream).value),  # its two values
        "reason": reason_public(reason),
        "at": timezone.now().isoformat(),
    }


@receiver(camera_went_offline)
def camera_offline_announce(
    sender: type, camera: Camera, stream: StreamKind, reason: str, **kwargs: object
) -> None:
    frame = encode(camera_offline_frame(camera, stream, reason))
    announce_on_commit("cameras", {"camera": camera.pk, "frame": frame})
