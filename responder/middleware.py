import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

SIGNED_IN_AT = "signed_in_at"

View = Callable[..., HttpResponse]


class SessionLifetimeMiddleware:
    """Ends a session SESSION_MAX_AGE after sign-in, however busy it has been.

    Idle expiry is the session cookie's own age, renewed by every request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            signed_in_at = request.session.get(SIGNED_IN_AT)
            if signed_in_at is None or time.time() - signed_in_at > settings.SESSION_MAX_AGE:
                logout(request)
        return self.get_response(request)


def session_free(view: View) -> View:
    """Marks a view that authorises by its signed URL alone and must never renew a session."""
    view.session_free = True
    return view


class SessionFreeMiddleware:
    """Before SessionMiddleware: a session-free view's request loses its session cookie.

    With SESSION_SAVE_EVERY_REQUEST, any request carrying the cookie saves the session and
    so renews its idle time; a player fetching a playlist every second would keep a
    session alive for ever. Without the cookie nothing loads, saves or deletes it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.SESSION_COOKIE_NAME in request.COOKIES and _is_session_free(request):
            del request.COOKIES[settings.SESSION_COOKIE_NAME]
        return self.get_response(request)


def _is_session_free(request: HttpRequest) -> bool:
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return False
    return getattr(match.func, "session_free", False)
