"""The recording store's tasks: beat's sweeps (no arguments, one service call each) and the
transcode of a recorded playback."""

from __future__ import annotations

from functools import partial

from celery import shared_task

from cameras.live import live_run
from responder.recording import guard, retention
from responder.recording.playback import transcode_write


@shared_task(acks_late=True, ignore_result=True)
def recording_buffer_sweep() -> dict:
    outcome = retention.buffer_sweep()
    return {"promoted": outcome.promoted, "deleted": outcome.deleted}


@shared_task(acks_late=True, ignore_result=True)
def recording_retention_sweep() -> int:
    return retention.retention_sweep()


@shared_task(acks_late=True, ignore_result=True)
def recording_disk_guard() -> float:
    return guard.disk_guard().free_percent


@shared_task(acks_late=True, ignore_result=True)
def recording_orphans_sweep() -> int:
    return retention.orphans_sweep()


# Like live sessions: not acks_late, a lost session restarts at the next playlist fetch.
# Queued on `video` by its caller (playback_launch): a video worker's slot.
@shared_task(acks_late=False, ignore_result=True)
def recorded_session(camera_id: int, name: str) -> str:
    write = partial(transcode_write, camera_id=camera_id, name=name)
    return live_run(camera_id=camera_id, profile=name, write=write)
