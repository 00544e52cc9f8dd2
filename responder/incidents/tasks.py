from celery import shared_task

from responder.incidents.services import incident_grants_expire as grants_expire


@shared_task(name="responder.tasks.incident_grants_expire", acks_late=True, ignore_result=True)
def incident_grants_expire() -> int:
    return grants_expire()
