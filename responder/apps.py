from django.apps import AppConfig


class ResponderConfig(AppConfig):
    name = "responder"

    def ready(self) -> None:
        from responder import signals  # noqa: F401
