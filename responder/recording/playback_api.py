"""REST views for recorded video: validate, call responder/recording/playback.py, render."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cameras import media
from cameras.live import (
    LiveUnavailable,
    viewer_hold,
    viewer_profiles,
    viewer_release,
)
from cameras.models import Camera
from cameras.tokens import RECORDED_PLAYLIST, TokenError, token_issue
from responder.core.access import signed_in
from responder.core.audit import audit_record
from responder.core.capabilities import Capability
from responder.core.models import Outcome
from responder.recording import playback


def _camera(request: Request, camera_id: int) -> Camera:
    # The one scope rule: out of scope and without `recorded` look the same, 404.
    return get_object_or_404(
        Camera.objects.visible_to(request.user, Capability.RECORDED), pk=camera_id
    )


class WindowSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()

    def validate(self, data: dict) -> dict:
        if data["end"] <= data["start"]:
            raise serializers.ValidationError("end must be after start.")
        if data["end"] - data["start"] > playback.WINDOW_MAX:
            days = playback.WINDOW_MAX.days
            raise serializers.ValidationError(f"The window is longer than {days} days.")
        return data


class RangeSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class GapSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()


class EventMarkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    occurred_at = serializers.DateTimeField()


class RecordingsSerializer(serializers.Serializer):
    ranges = RangeSerializer(many=True)
    gaps = GapSerializer(many=True)
    events = EventMarkSerializer(many=True)


class RecordingsView(APIView):
    @extend_schema(
        parameters=[WindowSerializer],
        responses=RecordingsSerializer,
        summary="What is recorded in a window: merged ranges, gaps with reasons, door events",
    )
    def get(self, request: Request, camera_id: int) -> Response:
        camera = _camera(request, camera_id)
        form = WindowSerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        window = playback.recordings_window(
            camera=camera, user=signed_in(request.user), **form.validated_data
        )
        return Response(RecordingsSerializer(window).data)


class PlaybackRequestSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    profile = serializers.ChoiceField(choices=media.PROFILE_NAMES, default="low")
    # Source of an H.265 recording only for a browser that said it plays H.265 (hvc1).
    hevc = serializers.BooleanField(default=False)


class PlaybackResponseSerializer(serializers.Serializer):
    playlist = serializers.URLField()
    expires_at = serializers.DateTimeField()
    profile = serializers.CharField()
    start = serializers.DateTimeField()


class NothingRecordedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    # Absent from the plain 404 of a camera that is not there or not the user's.
    next = serializers.DateTimeField(allow_null=True, required=False)


class PlaybackView(APIView):
    @extend_schema(
        request=PlaybackRequestSerializer,
        responses={200: PlaybackResponseSerializer, 404: NothingRecordedSerializer},
        summary="A signed HLS playlist of the recording from `start` (the keyframe before it)",
    )
    def post(self, request: Request, camera_id: int) -> Response:
        camera = _camera(request, camera_id)
        form = PlaybackRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        asked, profile = form.validated_data["start"], form.validated_data["profile"]
        audit = {"profile": profile, "start": playback.iso(asked)}
        try:
            segment = playback.segment_at(camera_id=camera.pk, at=asked)
            start = playback.playback_start(camera_id=camera.pk, at=asked)
        except playback.NothingRecorded as nothing:
            return self._nothing(request, camera, audit, nothing)
        if profile == media.SOURCE and segment.codec == "hevc" and not form.validated_data["hevc"]:
            return Response(
                {"detail": "This recording is H.265: ask a transcoded profile, or source with "
                 "hevc=true from a browser that plays H.265."},
                status=400,
            )  # fmt: skip
        name = playback.session_name(profile, start)
        if profile != media.SOURCE:
            refused = self._transcode(request, camera, name, audit)
            if refused is not None:
                return refused
        try:
            token, expires = token_issue(
                user_id=signed_in(request.user).pk, camera_id=camera.pk, profile=name,
                session=request.session, kind=RECORDED_PLAYLIST,
            )  # fmt: skip
        except TokenError as error:
            return Response({"detail": str(error)}, status=error.status)
        audit |= {"from": playback.iso(start), "until": playback.iso(_until(start))}
        audit_record(action="video.recorded", request=request, obj=camera, details=audit)
        path = reverse("camera-recorded-playlist", args=[camera.pk, name])
        body = {
            "playlist": request.build_absolute_uri(f"{path}?token={token}"),
            "expires_at": dt.datetime.fromtimestamp(expires, tz=dt.UTC),
            "profile": profile,
            "start": start,
        }
        return Response(PlaybackResponseSerializer(body).data)

    def _nothing(self, request, camera, audit, nothing) -> Response:
        audit_record(
            action="video.recorded", request=request, obj=camera, outcome=Outcome.FAILURE,
            details=audit | {"reason": "nothing recorded"},
        )  # fmt: skip
        body = {"detail": str(nothing), "next": nothing.next_start}
        return Response(NothingRecordedSerializer(body).data, status=404)

    def _transcode(self, request, camera, name: str, audit: dict) -> Response | None:
        """Start or join the session on a video worker and wait for its first segment."""
        view = {"user_id": request.user.pk, "camera_id": camera.pk, "profile": name}
        # A seek replaces the user's earlier playback of this camera: it no longer counts
        # against their cap of views (its worker idles, then stops with its lease).
        for earlier in viewer_profiles(user_id=request.user.pk, camera_id=camera.pk):
            if "@" in earlier and earlier != name:
                viewer_release(user_id=request.user.pk, camera_id=camera.pk, profile=earlier)
        try:
            seconds = settings.LIVE_START_TIMEOUT + settings.LIVE_IDLE_SECONDS
            viewer_hold(**view, seconds=seconds)
            playback.transcoded_join(camera=camera, name=name)
        except LiveUnavailable as error:
            if error.status != 429:
                viewer_release(**view)
            audit_record(
                action="video.recorded", request=request, obj=camera, outcome=Outcome.FAILURE,
                details=audit | {"reason": error.message},
            )  # fmt: skip
            headers = {"Retry-After": str(error.retry_after)}
            return Response({"detail": error.message}, status=error.status, headers=headers)
        return None


def _until(start: dt.datetime) -> dt.datetime:
    return start + dt.timedelta(seconds=playback.PLAYLIST_SECONDS)


class AtSerializer(serializers.Serializer):
    at = serializers.DateTimeField()


class FrameView(APIView):
    @extend_schema(
        parameters=[AtSerializer],
        responses={(200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY)},
        summary="A JPEG of the keyframe nearest before `at` (timeline thumbnails)",
    )
    def get(self, request: Request, camera_id: int) -> HttpResponse:
        camera = _camera(request, camera_id)
        form = AtSerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        at = form.validated_data["at"]
        try:
            segment = playback.segment_at(camera_id=camera.pk, at=at)
            index = playback.keyframe_index(segment, at)
            image = playback.frame_jpeg(segment=segment, index=index)
        except (playback.NothingRecorded, IndexError, media.SourceError):
            later = playback.Segment.objects.filter(camera=camera, start__gt=at).order_by("start")
            body = {"detail": "Nothing is recorded at this time for this camera.",
                    "next": later.values_list("start", flat=True).first()}  # fmt: skip
            return Response(NothingRecordedSerializer(body).data, status=404)
        shown = playback.keyframe_time(segment, index)
        audit_record(
            action="video.recorded_frame", request=request, obj=camera,
            details={"at": playback.iso(at), "frame": playback.iso(shown)},
        )  # fmt: skip
        response = HttpResponse(image, content_type="image/jpeg")
        response["Cache-Control"] = "private, max-age=3600"
        return response
