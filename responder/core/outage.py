"""The database out of reach: 503 with Retry-After, never a 500.

A request that cannot reach PostgreSQL changed nothing (its transaction, if any, rolled
back), so the sender may simply try again: an access system's webhook retries on a 503
(RFC 9110 §15.6.4) and a connector backs off on its own. A 500 would read as our bug, and
some senders drop an event after one.
"""

from collections.abc import Callable
from importlib import import_module

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

# Long enough for PostgreSQL to restart or a failover to finish, short enough that a
# retried alarm is still news.
RETRY_AFTER_SECONDS = 5
OUTAGE_ERRORS = (OperationalError, InterfaceError)


def unavailable(request: HttpRequest) -> HttpResponse:
    _session_forget(request)
    response = JsonResponse(
        {"detail": "The database is out of reach. Try again shortly."}, status=503
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseOutageMiddleware:
    """Between AuthenticationMiddleware and OTPMiddleware: loads the session and the user
    itself, so an outage there answers 503 rather than failing inside a later middleware;
    and a view's outage (DRF's views re-raise what they do not know) answers 503 too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.user.is_authenticated  # noqa: B018  (the lazy load is the point)
        except OUTAGE_ERRORS:
            return unavailable(request)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return unavailable(request) if isinstance(exception, OUTAGE_ERRORS) else None


def _session_forget(request: HttpRequest) -> None:
    # On the way out SessionMiddleware would read the session again (it saves on every
    # request), failing anew; without the cookie it leaves the session, and the browser's
    # cookie, alone: the user is still signed in once the database is back.
    request.COOKIES.pop(settings.SESSION_COOKIE_NAME, None)
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
