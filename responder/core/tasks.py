from celery import shared_task

from responder.core.signin import signin_states_prune as states_prune


@shared_task(name="responder.tasks.signin_states_prune", acks_late=True, ignore_result=True)
def signin_states_prune() -> int:
    return states_prune()
