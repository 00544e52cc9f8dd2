"""The one rule of a session's validity, for HTTP requests and sockets alike.

A signed-in session is valid while its second factor (the session's device: confirmed, the
user's own) is still there, until SESSION_MAX_AGE after sign-in however busy it has been,
and until SESSION_COOKIE_AGE after its last HTTP request. Only HTTP requests are activity:
the browser drops the cookie that long after the last response that renewed it, so a
session kept alive by a socket alone could not open the next socket or load anything.
"""

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import Resolver404, resolve
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

SIGNED_IN_AT = "signed_in_at"
SEEN_AT = "seen_at"  # the session's last HTTP request


def session_valid_until(session: SessionBase, user: User, device: Device | None) -> float | None:
    """When this signed-in session ends (a `time.time()`), or None if it has ended."""
    ends_at = session_ends_at(session)
    verified = device is not None and device.user_id == user.pk and device.confirmed
    return ends_at if verified and time.time() < ends_at else None


def session_ends_at(session: SessionBase) -> float:
    """The lifetime and idle limits alone: when the session ends, whatever its device."""
    signed_in_at = session.get(SIGNED_IN_AT)
    seen_at = session.get(SEEN_AT, signed_in_at)
    # Sessions from before the limits existed, or written by some other path, carry no stamps.
    if not (isinstance(signed_in_at, int | float) and isinstance(seen_at, int | float)):
        return 0.0
    return min(signed_in_at + settings.SESSION_MAX_AGE, seen_at + settings.SESSION_COOKIE_AGE)


View = Callable[..., HttpResponseBase]


class SessionLifetimeMiddleware:
    """Ends the session `session_valid_until` says has ended; otherwise the request is activity.

    After django_otp's OTPMiddleware, whose `otp_device` is the session's device. A session
    that never had one (signed in by some path without the second factor) is left to
    IsVerified and OTPAdminSite to refuse, until its time is up.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Read first: OTPMiddleware forgets a device that is gone when the user is loaded.
        had_device = DEVICE_ID_SESSION_KEY in request.session
        user = request.user
        if user.is_authenticated:
            device = getattr(user, "otp_device", None)
            if session_valid_until(request.session, user, device) is not None:
                request.session[SEEN_AT] = time.time()
            elif had_device or session_ends_at(request.session) <= time.time():
                logout(request)
        return self.get_response(request)


def session_free(view: View) -> View:
    """Marks a view that authorises by its signed URL alone and must never renew a session."""
    view.session_free = True  # type: ignore[attr-defined]  # a mark read by _is_session_free
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
