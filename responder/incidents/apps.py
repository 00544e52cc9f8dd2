from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "responder.incidents"
    label = "incidents"
