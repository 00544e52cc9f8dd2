from celery import shared_task
from django.conf import settings

from cameras.health import camera_probe
from cameras.models import Camera


# Not acks_late: a lost session is restarted by the next playlist fetch, never redelivered.
@shared_task(acks_late=False, ignore_result=True)
def live_session(camera_id: int, profile: str) -> str:
    # Imported here, as the HackSoft styleguide's emails/tasks.py does: cameras/live.py
    # queues this task (the service imports its task), and the task runs the service.
    from cameras.live import live_run

    return live_run(camera_id=camera_id, profile=profile)


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
    from cameras.live import live_sweep  # as in live_session

    return live_sweep()
