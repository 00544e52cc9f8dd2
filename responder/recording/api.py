from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cameras.models import Camera, CameraQuerySet
from responder.core.access import is_district_it, signed_in
from responder.core.capabilities import Capability
from responder.core.permissions import IsVerified
from responder.recording.models import Hold, HoldQuerySet
from responder.recording.serializers import (
    HoldCreateSerializer,
    HoldReleaseSerializer,
    HoldSerializer,
)
from responder.recording.services import HoldRefused, hold_create, hold_release
from responder.recording.status import storage_status


class IsDistrictIT(BasePermission):
    # A 403, not a 404: the endpoint is in the published schema and shows no object of
    # anyone's scope, so refusing it confirms nothing.
    message = "District IT only."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_district_it(request.user)


class RecordingStatus(APIView):
    """Storage status of the recordings: per camera, held, free space, forecast."""

    permission_classes = [IsVerified, IsDistrictIT]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(storage_status())


def _export_cameras(request: Request) -> CameraQuerySet:
    # Holds are the export capability's: placing, listing and releasing one (issue 17).
    return Camera.objects.visible_to(request.user, Capability.EXPORT)


def _holds_visible(request: Request) -> HoldQuerySet:
    """Holds on at least one camera of the user's export scope, newest first."""
    on_mine = Hold.objects.filter(cameras__in=_export_cameras(request)).values("id")
    return (
        Hold.objects.filter(id__in=on_mine)
        .select_related("created_by", "released_by", "incident")
        .prefetch_related(Prefetch("cameras", Camera.objects.only("id")))
        .order_by("-created_at", "-id")
    )


def _hold_body(request: Request, holds: Hold | list[Hold], many: bool = False) -> dict:
    visible = set(_export_cameras(request).values_list("id", flat=True))
    return HoldSerializer(holds, many=many, context={"visible_cameras": visible}).data


class HoldList(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("active", bool, description="Only holds in force.")],
        responses=HoldSerializer(many=True),
        summary="Holds on cameras in your export scope: who, why, source, range, until",
    )
    def get(self, request: Request) -> Response:
        holds = _holds_visible(request)
        if request.query_params.get("active") in {"true", "1"}:
            holds = holds.active()
        return Response(_hold_body(request, list(holds), many=True))

    @extend_schema(
        request=HoldCreateSerializer,
        responses={
            201: HoldSerializer,
            404: OpenApiResponse(description="A camera unknown or not in your export scope"),
        },
        summary="Hold cameras' footage of a range from retention (capability export)",
    )
    def post(self, request: Request) -> Response:
        form = HoldCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        wanted = set(data["cameras"])
        cameras = list(_export_cameras(request).filter(pk__in=wanted).only("id"))
        if len(cameras) != len(wanted):  # unknown and out of scope read the same
            raise NotFound("No such camera.")
        hold = hold_create(
            cameras=cameras, start=data["start"], end=data["end"], reason=data["reason"],
            until=data["until"], by=signed_in(request.user),
        )  # fmt: skip
        hold = _holds_visible(request).get(pk=hold.pk)
        return Response(_hold_body(request, hold), status=201)


class HoldDetail(APIView):
    def _hold(self, request: Request, hold_id: int) -> Hold:
        return get_object_or_404(_holds_visible(request), pk=hold_id)

    @extend_schema(responses=HoldSerializer, summary="One hold on cameras in your export scope")
    def get(self, request: Request, hold_id: int) -> Response:
        return Response(_hold_body(request, self._hold(request, hold_id)))

    @extend_schema(
        request=HoldReleaseSerializer,
        responses={204: None, 409: OpenApiTypes.OBJECT},
        summary="Release a hold, with the reason (audited); an open incident's hold stays",
    )
    def delete(self, request: Request, hold_id: int) -> Response:
        hold = self._hold(request, hold_id)
        form = HoldReleaseSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        # Releasing footage one cannot see would be deciding for someone else's cameras.
        if hold.cameras.exclude(pk__in=_export_cameras(request)).exists():
            raise PermissionDenied("This hold covers cameras outside your export scope.")
        try:
            hold_release(
                hold=hold, by=signed_in(request.user), reason=form.validated_data["reason"]
            )
        except HoldRefused as refused:
            return Response({"detail": str(refused)}, status=409)
        return Response(status=204)
