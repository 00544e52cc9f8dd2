from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ResponderConfig(AppConfig):
    name = "responder"

    def ready(self) -> None:
        from responder import camera_notices, scope_notices, signals  # noqa: F401


class ResponderAdminConfig(admin_apps.AdminConfig):
    # Replaces "django.contrib.admin": admin.site is then the two-factor site.
    default = False  # ResponderConfig stays the default config of "responder".
    default_site = "responder.admin_site.ResponderAdminSite"
