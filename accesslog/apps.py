from django.apps import AppConfig


class AccesslogConfig(AppConfig):
    name = "accesslog"
    verbose_name = "Access control"

    def ready(self) -> None:
        from accesslog import directory  # noqa: F401  (its signal receivers)
