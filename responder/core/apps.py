from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ResponderConfig(AppConfig):
    # The label stays "responder": its tables, migrations and permissions keep their names.
    name = "responder.core"
    label = "responder"

    def ready(self) -> None:
        from responder.core import signals  # noqa: F401


class ResponderAdminConfig(admin_apps.AdminConfig):
    # Replaces "django.contrib.admin": admin.site is then the two-factor site.
    default = False  # ResponderConfig stays the default config of "responder".
    default_site = "responder.core.admin_site.ResponderAdminSite"


# django-otp's apps under names district IT reads in the admin (their labels stay).
class TOTPConfig(AppConfig):
    default = False  # not "responder"'s: ResponderConfig stays that
    name = "django_otp.plugins.otp_totp"
    verbose_name = "Sign-in codes: authenticator apps"
    default_auto_field = "django.db.models.AutoField"


class StaticCodesConfig(AppConfig):
    default = False
    name = "django_otp.plugins.otp_static"
    verbose_name = "Sign-in codes: backup codes"
    default_auto_field = "django.db.models.AutoField"
