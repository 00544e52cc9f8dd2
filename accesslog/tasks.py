from celery import shared_task

from accesslog.warmup import live_warm_door


# Named as before the move: CELERY_TASK_ROUTES sends cameras.tasks.* to the video workers.
@shared_task(name="cameras.tasks.live_warm_up", ignore_result=True)
def live_warm_up(door_id: int) -> list[int]:
    return live_warm_door(door_id=door_id)
