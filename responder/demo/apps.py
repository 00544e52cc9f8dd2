from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "responder.demo"
    label = "demo"
