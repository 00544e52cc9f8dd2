"""The signed HLS playlist and segments: no session cookie, only the token in the URL."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from cameras.live import LiveUnavailable, live_touch, playlist_read, session_dir
from cameras.models import Camera
from cameras.tokens import TokenError, token_check, token_renew
from responder.capabilities import Capability

SEGMENT_NAME = re.compile(r"^seg\d{1,9}\.ts$")


def _refuse(status: int, message: str, retry_after: int | None = None) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain")
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def playlist(request: HttpRequest, camera_id: int, profile: str) -> HttpResponse:
    try:
        user, claims = token_check(
            request.GET.get("token", ""), camera_id=camera_id, profile=profile
        )
    except TokenError as error:
        return _refuse(error.status, str(error))
    # Scope is asked again on every fetch: an ended grant ends the stream too.
    if not Camera.objects.visible_to(user, Capability.LIVE).filter(pk=camera_id).exists():
        return _refuse(403, "You may no longer watch this camera.")
    try:
        live_touch(camera_id=camera_id, profile=profile)
    except LiveUnavailable as error:
        return _refuse(503, error.message, error.retry_after)
    text = playlist_read(camera_id=camera_id, profile=profile)
    if text is None:
        return _refuse(503, "The stream is starting.", 1)
    token = token_renew(claims)
    lines = [
        f"{line}?token={token}" if SEGMENT_NAME.match(line) else line for line in text.splitlines()
    ]
    response = HttpResponse("\n".join(lines) + "\n", content_type="application/vnd.apple.mpegurl")
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def segment(request: HttpRequest, camera_id: int, profile: str, name: str) -> HttpResponse:
    try:
        token_check(request.GET.get("token", ""), camera_id=camera_id, profile=profile)
    except TokenError as error:
        return _refuse(error.status, str(error))
    directory = session_dir(camera_id=camera_id, profile=profile)
    if not SEGMENT_NAME.match(name) or directory is None or not (directory / name).is_file():
        raise Http404("No such segment.")
    if settings.LIVE_ACCEL_REDIRECT:
        relative = (directory / name).relative_to(settings.LIVE_ROOT).as_posix()
        response = HttpResponse(content_type="video/mp2t")
        response["X-Accel-Redirect"] = settings.LIVE_ACCEL_REDIRECT.rstrip("/") + "/" + relative
    else:
        try:
            # Streamed from the open file: never read whole into memory.
            response = FileResponse((directory / name).open("rb"), content_type="video/mp2t")
        except FileNotFoundError:  # the sliding window moved on between check and open
            raise Http404("No such segment.") from None
    response["Cache-Control"] = "private, max-age=60"
    return response
