from django.apps import AppConfig


class CamerasConfig(AppConfig):
    name = "cameras"
