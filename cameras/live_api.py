"""REST views for live video and snapshots: validate, call cameras/live.py, render."""

from __future__ import annotations

from datetime import UTC, datetime

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
from cameras.live import LiveUnavailable, live_join, viewer_hold, viewer_release
from cameras.models import Camera
from cameras.snapshots import FAILURE_SECONDS, camera_snapshot
from cameras.tokens import TokenError, token_issue
from responder.core.access import signed_in
from responder.core.audit import audit_record
from responder.core.capabilities import Capability
from responder.core.models import Outcome


class LiveRequestSerializer(serializers.Serializer):
    profile = serializers.ChoiceField(choices=media.PROFILE_NAMES, default="low")


class LiveResponseSerializer(serializers.Serializer):
    playlist = serializers.URLField()
    expires_at = serializers.DateTimeField()
    profile = serializers.CharField()


# Not a fault of ours: the camera, a video worker or the viewer's cap; Retry-After says when.
UNAVAILABLE = {
    429: OpenApiResponse(description="Too many cameras open at once."),
    503: OpenApiResponse(description="The camera or its video worker is not there yet."),
}


def _unavailable(error: LiveUnavailable) -> Response:
    return Response(
        {"detail": error.message},
        status=error.status,
        headers={"Retry-After": str(error.retry_after)},
    )


class LiveView(APIView):
    @extend_schema(
        request=LiveRequestSerializer, responses={200: LiveResponseSerializer, **UNAVAILABLE}
    )
    def post(self, request: Request, camera_id: int) -> Response:
        camera = get_object_or_404(
            Camera.objects.visible_to(request.user, Capability.LIVE), pk=camera_id
        )
        form = LiveRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        profile = form.validated_data["profile"]
        view = {"user_id": request.user.pk, "camera_id": camera.pk, "profile": profile}
        try:
            # Held while the first segment comes, then by the player's playlist fetches.
            seconds = settings.LIVE_START_TIMEOUT + settings.LIVE_IDLE_SECONDS
            viewer_hold(**view, seconds=seconds)
            live_join(camera=camera, profile=profile)
        except LiveUnavailable as error:
            if error.status != 429:
                viewer_release(**view)
            audit_record(
                action="video.live",
                request=request,
                obj=camera,
                outcome=Outcome.FAILURE,
                details={"profile": profile, "reason": error.message},
            )
            return _unavailable(error)
        try:
            token, expires = token_issue(
                user_id=signed_in(request.user).pk, camera_id=camera.pk, profile=profile,
                session=request.session,
            )  # fmt: skip
        except TokenError as error:
            return Response({"detail": str(error)}, status=error.status)
        audit_record(
            action="video.live", request=request, obj=camera, details={"profile": profile}
        )
        path = reverse("camera-live-playlist", args=[camera.pk, profile])
        body = {
            "playlist": request.build_absolute_uri(f"{path}?token={token}"),
            "expires_at": datetime.fromtimestamp(expires, tz=UTC),
            "profile": profile,
        }
        return Response(LiveResponseSerializer(body).data)


class SnapshotView(APIView):
    @extend_schema(
        responses={
            (200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY),
            503: UNAVAILABLE[503],
        }
    )
    def get(self, request: Request, camera_id: int) -> HttpResponse:
        camera = get_object_or_404(
            Camera.objects.visible_to(request.user, Capability.LIVE), pk=camera_id
        )
        if not camera.enabled:
            return _unavailable(LiveUnavailable("This camera is switched off.", 60))
        try:
            image = camera_snapshot(camera=camera)
        except media.SourceError as error:
            # The plain reason only: FFmpeg's detail names the stream URL (camera health has it).
            reason = f"The camera is unreachable. {error.reason}"
            return _unavailable(LiveUnavailable(reason, FAILURE_SECONDS))
        audit_record(action="video.snapshot", request=request, obj=camera)
        response = HttpResponse(image, content_type="image/jpeg")
        response["Cache-Control"] = "private, max-age=5"
        return response
