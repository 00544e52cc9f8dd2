"""Which policy a camera follows: its own row, else the district default.

The default is a row like the others (camera empty), so IT edits it in the admin; it is
created with the model's defaults the first time anything asks for it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from cameras.models import Camera
from responder.recording.models import RecordingMode, RecordingPolicy, RecordingStop


def policy_default() -> RecordingPolicy:
    policy = RecordingPolicy.objects.filter(camera__isnull=True).first()
    if policy is not None:
        return policy
    try:
        with transaction.atomic():
            return RecordingPolicy.objects.create(camera=None)
    except IntegrityError:  # another process made it first: the constraint allows one
        return RecordingPolicy.objects.get(camera__isnull=True)


def policy_for(camera: Camera | int) -> RecordingPolicy:
    camera_id = camera if isinstance(camera, int) else camera.pk
    return RecordingPolicy.objects.filter(camera_id=camera_id).first() or policy_default()


def policies_for(camera_ids: Iterable[int]) -> dict[int, RecordingPolicy]:
    """camera id -> the policy it follows, in two queries whatever the number of cameras."""
    ids = set(camera_ids)
    default = policy_default()
    own = {p.camera_id: p for p in RecordingPolicy.objects.filter(camera_id__in=ids)}
    return {camera_id: own.get(camera_id, default) for camera_id in ids}


def cameras_in_mode(*modes: RecordingMode) -> QuerySet[Camera]:
    """Cameras whose policy (their own or the default's) is one of these modes."""
    q = Q(recording_policy__mode__in=modes)
    if policy_default().mode in modes:
        q |= Q(recording_policy__isnull=True)
    return Camera.objects.filter(q)


def cameras_to_record() -> QuerySet[Camera]:
    """What recorders claim: enabled, not `off`, not stopped by the disk guard."""
    recorded = cameras_in_mode(RecordingMode.CONTINUOUS, RecordingMode.EVENTS)
    stopped = RecordingStop.objects.values("camera")
    return recorded.filter(enabled=True).exclude(pk__in=stopped)
