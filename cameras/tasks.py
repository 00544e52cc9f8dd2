from celery import shared_task
from django.conf import settings

from cameras.health import camera_probe
from cameras.live import live_run, live_sweep, live_warm_door
from cameras.models import Camera


# Not acks_late: a lost session is restarted by the next playlist fetch, never redelivered.
@shared_task(acks_late=False, ignore_result=True)
def live_session(camera_id: int, profile: str) -> str:
    return live_run(camera_id=camera_id, profile=profile)


@shared_task(ignore_result=True)
def live_warm_up(door_id: int) -> list[int]:
    return live_warm_door(door_id=door_id)


@shared_task(ignore_result=True)
def health_probe(camera_id: int) -> None:
    camera = Camera.objects.filter(pk=camera_id, enabled=True).first()
    if camera is not None:
        camera_probe(camera=camera, timeout=settings.CAMERA_TIMEOUT)


@shared_task(ignore_result=True)
def health_probe_all() -> None:
    for camera_id in Camera.objects.enabled().values_list("pk", flat=True):
        health_probe.delay(camera_id)


@shared_task(ignore_result=True)
def live_clean_up() -> int:
    return live_sweep()
