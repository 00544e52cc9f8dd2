from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from accesslog.models import EventAck
from accesslog.rendering import watchable_door_cameras
from responder.core.access import signed_in
from responder.core.models import Grant, Incident, IncidentEntry, IncidentStatus
from responder.incidents.custody import custody_trail
from responder.incidents.serializers import (
    CustodyRowSerializer,
    EmergencyGrantSerializer,
    IncidentAssignSerializer,
    IncidentDetailSerializer,
    IncidentExtendSerializer,
    IncidentNoteSerializer,
    IncidentOpenSerializer,
    IncidentSerializer,
    ResponderGroupSerializer,
)
from responder.incidents.services import (
    IncidentRefused,
    assignable_users,
    emergency_groups,
    incident_assign,
    incident_buildings,
    incident_campuses,
    incident_close,
    incident_extend,
    incident_note_add,
    incident_request,
    incidents_visible_to,
    may_run,
    nameable_groups,
    unassignable_message,
)

# Emergency grants stay listed this long after they end, so users see what they had.
GRANTS_SHOWN_DAYS = 30


class IncidentViewSet(viewsets.GenericViewSet):
    """Open incidents in the user's scope; 404 for any other."""

    queryset = Incident.objects.none()  # for the schema; the real one depends on the user
    serializer_class = IncidentSerializer

    def get_queryset(self) -> QuerySet[Incident]:
        incidents = incidents_visible_to(self.request.user).prefetch_related(
            "responder_groups", "responders"
        )
        if self.action != "list":
            entries = IncidentEntry.objects.select_related(
                "user", "event__door__building__campus", "event__door__floor"
            ).prefetch_related(
                # Only the door's cameras this viewer may watch, as on the socket.
                Prefetch(
                    "event__door__door_cameras",
                    watchable_door_cameras(signed_in(self.request.user)),
                ),
                Prefetch("event__acks", EventAck.objects.select_related("user")),
            )
            incidents = incidents.prefetch_related(Prefetch("timeline", entries))
        return incidents.select_related("opened_by")

    @extend_schema(summary="Open incidents the user runs or responds to (?status=closed|all)")
    def list(self, request: Request) -> Response:
        incidents = self.get_queryset()
        wanted = request.query_params.get("status", IncidentStatus.OPEN)
        if wanted != "all":
            incidents = incidents.filter(status=wanted)
        return Response(IncidentSerializer(incidents, many=True).data)

    @extend_schema(responses=IncidentDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(IncidentDetailSerializer(self.get_object()).data)

    @extend_schema(request=IncidentOpenSerializer, responses={201: IncidentDetailSerializer})
    def create(self, request: Request) -> Response:
        form = IncidentOpenSerializer(data=request.data)
        # What the user may not name reads as unknown, as a 404 would.
        # Related fields, declared so in IncidentOpenSerializer (the stubs see plain Fields).
        fields = cast(dict[str, Any], form.fields)
        fields["campus"].queryset = incident_campuses(request.user)
        fields["building"].queryset = incident_buildings(request.user)
        fields["responder_groups"].child_relation.queryset = emergency_groups()
        try:
            incident = incident_request(by=signed_in(request.user), **_valid(form))
        except IncidentRefused as refused:
            raise _refusal(refused) from None
        return Response(IncidentDetailSerializer(incident).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The responder roles the user may give emergency access to on opening one",
        responses=ResponderGroupSerializer(many=True),
    )
    @action(detail=False, methods=["get"], url_path="responder-groups")
    def responder_groups(self, request: Request) -> Response:
        groups = nameable_groups(by=signed_in(request.user))
        return Response(ResponderGroupSerializer(groups, many=True).data)

    @extend_schema(request=None, responses=IncidentDetailSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        incident = self._run(self.get_object())
        incident_close(incident=incident, by=signed_in(request.user))
        return Response(IncidentDetailSerializer(self.get_object()).data)

    @extend_schema(request=IncidentNoteSerializer, responses={201: IncidentDetailSerializer})
    @action(detail=True, methods=["post"])
    def notes(self, request: Request, pk: str) -> Response:
        incident = self.get_object()
        form = IncidentNoteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        incident_note_add(
            incident=incident, by=signed_in(request.user), text=form.validated_data["text"]
        )
        return Response(
            IncidentDetailSerializer(self.get_object()).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=IncidentAssignSerializer, responses=IncidentDetailSerializer)
    @action(detail=True, methods=["post"])
    def responders(self, request: Request, pk: str) -> Response:
        incident = self._run(self.get_object())
        names = _valid(IncidentAssignSerializer(data=request.data))["users"]
        users = list(assignable_users(by=signed_in(request.user)).filter(username__in=names))
        # Unknown, inactive, not a responder, oneself: one answer, so it confirms no name.
        refused = set(names) - {user.get_username() for user in users}
        if refused:
            raise _refusal(IncidentRefused("users", unassignable_message(refused)))
        try:
            incident_assign(incident=incident, by=signed_in(request.user), users=users)
        except IncidentRefused as refusal:
            raise _refusal(refusal) from None
        return Response(IncidentDetailSerializer(self.get_object()).data)

    @extend_schema(request=IncidentExtendSerializer, responses=IncidentDetailSerializer)
    @action(detail=True, methods=["post"])
    def extend(self, request: Request, pk: str) -> Response:
        incident = self._run(self.get_object())
        form = _valid(IncidentExtendSerializer(data=request.data))
        try:
            incident_extend(incident=incident, by=signed_in(request.user), **form)
        except IncidentRefused as refused:
            raise _refusal(refused) from None
        return Response(IncidentDetailSerializer(self.get_object()).data)

    def get_object(self) -> Incident:
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    def _run(self, incident: Incident) -> Incident:
        # Responders see the incident (so a 403 confirms nothing); only dispatch runs it.
        if not may_run(self.request.user, incident):
            raise PermissionDenied(
                "Closing, assigning and extending need the incidents capability over all "
                "the incident covers."
            )
        return incident


def _valid(form: Serializer) -> dict:
    """The form's data, or a 400 with a `detail` sentence beside the per-field errors."""
    if not form.is_valid():
        messages = [str(message) for message in _flat(form.errors)]
        raise ValidationError({"detail": " ".join(messages), **form.errors})
    return form.validated_data


def _flat(errors: object) -> list:
    if isinstance(errors, dict):
        return [m for value in errors.values() for m in _flat(value)]
    if isinstance(errors, list):
        return [m for value in errors for m in _flat(value)]
    return [errors]


def _refusal(refused: IncidentRefused) -> ValidationError:
    if refused.field == "detail":
        return ValidationError({"detail": refused.message})
    return ValidationError({"detail": refused.message, refused.field: [refused.message]})


class IncidentCustody(APIView):
    """The audit rows touching an incident's footage, for whoever may see the incident."""

    @extend_schema(
        responses=CustodyRowSerializer(many=True),
        summary="An incident's custody trail: views of its footage, its holds, its exports",
    )
    def get(self, request: Request, pk: int) -> Response:
        incident = get_object_or_404(incidents_visible_to(request.user), pk=pk)
        return Response(CustodyRowSerializer(custody_trail(incident), many=True).data)


class EmergencyGrantList(ListAPIView):
    """The user's incident grants, in force or recently ended: shown to whom they concern."""

    serializer_class = EmergencyGrantSerializer
    queryset = Grant.objects.none()
    pagination_class = None

    def get_queryset(self) -> QuerySet[Grant]:
        since = timezone.now() - timedelta(days=GRANTS_SHOWN_DAYS)
        return (
            Grant.objects.for_user(signed_in(self.request.user))
            .filter(incident__isnull=False, ends_at__gt=since)
            .select_related("incident", "group", "user")
            .order_by("-starts_at", "-id")
        )

    def get_serializer_context(self) -> dict:
        user = signed_in(self.request.user)
        active = Grant.objects.active().for_user(user).values_list("id", flat=True)
        return {**super().get_serializer_context(), "active_ids": set(active)}
