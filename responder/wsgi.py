"""WSGI entry point: the HTTP API without daphne (sockets still need daphne)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "responder.settings")

application = get_wsgi_application()

from responder.startup import startup_frozen  # noqa: E402

startup_frozen()
