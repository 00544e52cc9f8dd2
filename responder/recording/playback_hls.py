"""Recorded HLS: the signed playlists and their segments, token in the URL, no session.

`source`: a byte-range playlist over the recorder's own files, served with HTTP ranges.
Transcoded profiles: the files a video worker writes for the session, like live's.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.urls import reverse
from django.views.decorators.http import require_GET

from cameras import media
from cameras.hls import _refuse
from cameras.live import LiveUnavailable, live_touch, playlist_read, session_dir, viewer_hold
from cameras.tokens import (
    RECORDED_PLAYLIST,
    RECORDED_SEGMENT,
    Claims,
    TokenError,
    token_check,
    token_sign,
)
from responder.core.middleware import session_free
from responder.recording import playback
from responder.recording.models import Segment

SEGMENT_NAME = re.compile(r"^seg\d{1,9}\.ts$")
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 64 * 1024


def _claims(request: HttpRequest, *, kind: str, camera_id: int, name: str) -> Claims:
    token = request.GET.get("token", "")
    claims = token_check(token, kind=kind, camera_id=camera_id, profile=name)
    playback.viewer_check(claims, token=token if kind == RECORDED_SEGMENT else None)
    return claims


def _segment_token(claims: Claims) -> str:
    # As long as the playlist's own token: a VOD playlist is fetched once, its segments for
    # minutes after; never past the session (token_check asks for it on every request).
    return token_sign(claims, kind=RECORDED_SEGMENT)


def _playlist_response(text: str) -> HttpResponse:
    response = HttpResponse(text, content_type="application/vnd.apple.mpegurl")
    response["Cache-Control"] = "no-store"
    return response


@session_free
@require_GET
def playlist(request: HttpRequest, camera_id: int, name: str) -> HttpResponse:
    parsed = playback.session_parse(name)
    if parsed is None:
        raise Http404("No such playback.")
    try:
        claims = _claims(request, kind=RECORDED_PLAYLIST, camera_id=camera_id, name=name)
    except TokenError as error:
        return _refuse(error.status, str(error), error.retry_after)
    profile, starts = parsed
    token = _segment_token(claims)
    if profile == media.SOURCE:
        return _source_playlist(camera_id, name, starts, token)
    return _transcoded_playlist(claims, camera_id, name, starts, token)


def _source_playlist(camera_id: int, name: str, starts, token: str) -> HttpResponse:
    parts = list(playback.parts_from(camera_id=camera_id, at=starts))
    if not parts:
        raise Http404("Nothing is recorded here any more.")

    def url(segment: Segment) -> str:
        path = reverse("camera-recorded-file", args=[camera_id, name, segment.pk])
        return f"{path}?token={token}"

    return _playlist_response(playback.source_playlist(parts=parts, url=url))


def _transcoded_playlist(claims, camera_id: int, name: str, starts, token: str) -> HttpResponse:
    try:
        viewer_hold(
            user_id=claims.user_id, camera_id=camera_id, profile=name,
            seconds=settings.LIVE_IDLE_SECONDS,
        )  # fmt: skip
        launch = playback.playback_launch(camera_id, name)
        live_touch(camera_id=camera_id, profile=name, launch=launch)
    except LiveUnavailable as error:
        return _refuse(error.status, error.message, error.retry_after)
    text = playlist_read(camera_id=camera_id, profile=name)
    if text is None:
        return _refuse(503, "The recording is starting.", 1)
    lines = [
        f"{line}?token={token}" if SEGMENT_NAME.match(line) else line for line in text.splitlines()
    ]
    return _playlist_response(playback.transcoded_playlist("\n".join(lines), starts=starts))


@session_free
@require_GET
def transcoded_segment(
    request: HttpRequest, camera_id: int, name: str, file: str
) -> HttpResponseBase:
    try:
        _claims(request, kind=RECORDED_SEGMENT, camera_id=camera_id, name=name)
    except TokenError as error:
        return _refuse(error.status, str(error), error.retry_after)
    directory = session_dir(camera_id=camera_id, profile=name)
    if not SEGMENT_NAME.match(file) or directory is None or not (directory / file).is_file():
        raise Http404("No such segment.")
    playback.segment_fetched(camera_id=camera_id, name=name, number=int(file[3:-3]))
    if settings.LIVE_ACCEL_REDIRECT:
        relative = (directory / file).relative_to(settings.LIVE_ROOT).as_posix()
        return _accel(settings.LIVE_ACCEL_REDIRECT, relative)
    try:
        response = FileResponse((directory / file).open("rb"), content_type="video/mp2t")
    except FileNotFoundError:
        raise Http404("No such segment.") from None
    response["Cache-Control"] = "private, max-age=60"
    return response


@session_free
@require_GET
def recorded_file(
    request: HttpRequest, camera_id: int, name: str, segment_id: int
) -> HttpResponseBase:
    """A recorded segment's bytes as written, whole or the byte range the playlist names."""
    try:
        _claims(request, kind=RECORDED_SEGMENT, camera_id=camera_id, name=name)
    except TokenError as error:
        return _refuse(error.status, str(error), error.retry_after)
    segment = Segment.objects.filter(pk=segment_id, camera_id=camera_id).first()
    if segment is None:
        raise Http404("No such recording.")
    if settings.RECORDINGS_ACCEL_REDIRECT:  # nginx serves the range itself
        return _accel(settings.RECORDINGS_ACCEL_REDIRECT, segment.path)
    path = settings.RECORDINGS_ROOT / segment.path
    try:
        return _ranged(request, path)
    except FileNotFoundError:  # deleted by retention since the playlist was written
        raise Http404("No such recording.") from None


def _accel(prefix: str, relative: str) -> HttpResponse:
    response = HttpResponse(content_type="video/mp2t")
    response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + relative
    response["Cache-Control"] = "private, max-age=60"
    return response


def _ranged(request: HttpRequest, path: Path) -> HttpResponseBase:
    """RFC 9110 single byte ranges: what EXT-X-BYTERANGE players ask. Others get it whole."""
    file = path.open("rb")
    size = path.stat().st_size
    match = RANGE.match(request.headers.get("Range", "").strip())
    response: HttpResponseBase
    if match is None or match.groups() == ("", ""):
        response = FileResponse(file, content_type="video/mp2t")
    else:
        first, last = match.groups()
        if first == "":  # the last N bytes
            first, last = max(0, size - int(last)), size - 1
        else:
            first, last = int(first), min(int(last) if last else size - 1, size - 1)
        if first >= size or first > last:
            file.close()
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        response = StreamingHttpResponse(
            _read(file, first, last - first + 1), status=206, content_type="video/mp2t"
        )
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
        response["Content-Length"] = str(last - first + 1)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=60"
    return response


def _read(file, offset: int, length: int):
    with file:
        file.seek(offset)
        while length > 0:
            chunk = file.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
