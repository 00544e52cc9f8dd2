"""The demo's recording: the high school's main entrances continuously, its other cameras
in events mode (so door alarms from `simulate_doors` leave footage), the other campuses not
at all: all 150 simulated cameras would write ~28 MB/s on a newcomer's laptop. Idempotent."""

from __future__ import annotations

from django.db import transaction

from cameras.models import Camera
from responder.recording.models import RecordingMode, RecordingPolicy
from responder.recording.policy import policy_default

HIGH_SCHOOL = {"building__campus__name": "Riverside High School"}
CONTINUOUS_CAMERAS = {"name__contains": "Entrance –", **HIGH_SCHOOL}


@transaction.atomic
def recording_demo_seed() -> list[Camera]:
    """Returns the cameras recorded continuously."""
    default = policy_default()
    if default.mode != RecordingMode.OFF:
        default.mode = RecordingMode.OFF
        default.save(update_fields=["mode"])
    continuous = list(Camera.objects.filter(**CONTINUOUS_CAMERAS).order_by("name")[:4])
    for camera in Camera.objects.filter(**HIGH_SCHOOL):
        mode = RecordingMode.CONTINUOUS if camera in continuous else RecordingMode.EVENTS
        RecordingPolicy.objects.update_or_create(camera=camera, defaults={"mode": mode})
    return continuous
