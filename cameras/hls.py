"""The signed HLS playlist and segments: no session cookie, only the token in the URL.

Both views are session-free: a cookie sent along is ignored, so fetching video never
renews the session's idle time (responder.core.middleware.SessionFreeMiddleware).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.http import require_GET

from cameras.live import LiveUnavailable, live_touch, playlist_read, session_dir, viewer_hold
from cameras.tokens import (
    PLAYLIST,
    SEGMENT,
    TokenError,
    segment_token_issue,
    token_check,
    viewer_check,
)
from responder.core.middleware import session_free

SEGMENT_NAME = re.compile(r"^seg\d{1,9}\.ts$")


def _refuse(status: int, message: str, retry_after: int | None = None) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain")
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


@session_free
@require_GET
def playlist(request: HttpRequest, camera_id: int, profile: str) -> HttpResponse:
    try:
        claims = token_check(
            request.GET.get("token", ""), kind=PLAYLIST, camera_id=camera_id, profile=profile
        )
        # Asked again on every fetch: an ended grant or a camera switched off ends the stream.
        viewer_check(claims)
    except TokenError as error:
        return _refuse(error.status, str(error), error.retry_after)
    try:
        hold = settings.LIVE_IDLE_SECONDS
        viewer_hold(user_id=claims.user_id, camera_id=camera_id, profile=profile, seconds=hold)
        live_touch(camera_id=camera_id, profile=profile)
    except LiveUnavailable as error:
        return _refuse(error.status, error.message, error.retry_after)
    text = playlist_read(camera_id=camera_id, profile=profile)
    if text is None:
        return _refuse(503, "The stream is starting.", 1)
    token = segment_token_issue(claims)
    lines = [
        f"{line}?token={token}" if SEGMENT_NAME.match(line) else line for line in text.splitlines()
    ]
    response = HttpResponse("\n".join(lines) + "\n", content_type="application/vnd.apple.mpegurl")
    response["Cache-Control"] = "no-store"
    return response


@session_free
@require_GET
def segment(request: HttpRequest, camera_id: int, profile: str, name: str) -> HttpResponseBase:
    token = request.GET.get("token", "")
    try:
        claims = token_check(token, kind=SEGMENT, camera_id=camera_id, profile=profile)
        viewer_check(claims, token=token)
    except TokenError as error:
        return _refuse(error.status, str(error), error.retry_after)
    directory = session_dir(camera_id=camera_id, profile=profile)
    if not SEGMENT_NAME.match(name) or directory is None or not (directory / name).is_file():
        raise Http404("No such segment.")
    if settings.LIVE_ACCEL_REDIRECT:
        relative = (directory / name).relative_to(settings.LIVE_ROOT).as_posix()
        response: HttpResponseBase = HttpResponse(content_type="video/mp2t")
        response["X-Accel-Redirect"] = settings.LIVE_ACCEL_REDIRECT.rstrip("/") + "/" + relative
    else:
        try:
            # Streamed from the open file: never read whole into memory.
            response = FileResponse((directory / name).open("rb"), content_type="video/mp2t")
        except FileNotFoundError:  # the sliding window moved on between check and open
            raise Http404("No such segment.") from None
    response["Cache-Control"] = "private, max-age=60"
    return response
