from django.apps import AppConfig


class PushConfig(AppConfig):
    name = "responder.push"
    label = "push"

    def ready(self) -> None:
        from responder.incidents.services import incident_wake
        from responder.push.queue import incident_wake_queue

        incident_wake.connect(incident_wake_queue, dispatch_uid="push.incident_wake")
