"""A door alarm's nearest cameras, started before anyone asks: doors know their cameras,
cameras know nothing of doors (responder.alarms.services queues this after an alarm)."""

from __future__ import annotations

from accesslog.models import DoorCamera
from cameras.live import WARM_CAMERAS, live_warm


def live_warm_door(*, door_id: int) -> list[int]:
    """Warm the low sessions of a door's nearest enabled cameras (DoorCamera rank order)."""
    nearest = DoorCamera.objects.filter(door_id=door_id, camera__enabled=True).order_by(
        "rank", "camera_id"
    )
    camera_ids = list(nearest.values_list("camera_id", flat=True)[:WARM_CAMERAS])
    live_warm(camera_ids=camera_ids)
    return camera_ids
