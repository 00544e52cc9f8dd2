from django.apps import AppConfig


class AlarmsConfig(AppConfig):
    name = "responder.alarms"
    label = "alarms"

    def ready(self) -> None:
        from accesslog.connectors.base import ingest_register
        from responder.alarms import camera_notices, scope_notices  # noqa: F401
        from responder.alarms.services import event_ingest

        ingest_register(event_ingest)  # the connectors' feed stores through it
