from django.apps import AppConfig


class CamerasConfig(AppConfig):
    name = "cameras"

    def ready(self) -> None:
        from cameras import signals  # noqa: F401
