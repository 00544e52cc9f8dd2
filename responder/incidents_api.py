from __future__ import annotations

from datetime import timedelta

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accesslog.models import EventAck
from responder.incident_serializers import (
    EmergencyGrantSerializer,
    IncidentAssignSerializer,
    IncidentDetailSerializer,
    IncidentNoteSerializer,
    IncidentOpenSerializer,
    IncidentSerializer,
)
from responder.incidents import (
    incident_assign,
    incident_campuses,
    incident_close,
    incident_note_add,
    incident_open,
    incidents_visible_to,
    may_run,
)
from responder.models import Grant, Incident, IncidentEntry, IncidentStatus

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
            entries = IncidentEntry.objects.select_related("user", "event__door").prefetch_related(
                "event__door__door_cameras",
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
        # A campus outside the user's incident scope reads as unknown, as a 404 would.
        form.fields["campus"].queryset = incident_campuses(request.user)
        form.is_valid(raise_exception=True)
        incident = incident_open(by=request.user, **form.validated_data)
        return Response(IncidentDetailSerializer(incident).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=IncidentDetailSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        incident = self._run(self.get_object())
        incident_close(incident=incident, by=request.user)
        return Response(IncidentDetailSerializer(self.get_object()).data)

    @extend_schema(request=IncidentNoteSerializer, responses={201: IncidentDetailSerializer})
    @action(detail=True, methods=["post"])
    def notes(self, request: Request, pk: str) -> Response:
        incident = self.get_object()
        form = IncidentNoteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        incident_note_add(incident=incident, by=request.user, text=form.validated_data["text"])
        return Response(
            IncidentDetailSerializer(self.get_object()).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=IncidentAssignSerializer, responses=IncidentDetailSerializer)
    @action(detail=True, methods=["post"])
    def responders(self, request: Request, pk: str) -> Response:
        incident = self._run(self.get_object())
        form = IncidentAssignSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        incident_assign(incident=incident, by=request.user, users=form.validated_data["users"])
        return Response(IncidentDetailSerializer(self.get_object()).data)

    def get_object(self) -> Incident:
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    def _run(self, incident: Incident) -> Incident:
        # Responders see the incident (so a 403 confirms nothing); only dispatch runs it.
        if not may_run(self.request.user, incident.campus):
            raise PermissionDenied("Closing and assigning need the incidents capability.")
        return incident


class EmergencyGrantList(ListAPIView):
    """The user's incident grants, in force or recently ended: shown to whom they concern."""

    serializer_class = EmergencyGrantSerializer
    queryset = Grant.objects.none()
    pagination_class = None

    def get_queryset(self) -> QuerySet[Grant]:
        since = timezone.now() - timedelta(days=GRANTS_SHOWN_DAYS)
        return (
            Grant.objects.for_user(self.request.user)
            .filter(incident__isnull=False, ends_at__gt=since)
            .select_related("incident", "group", "user")
            .order_by("-starts_at", "-id")
        )

    def get_serializer_context(self) -> dict:
        active = Grant.objects.active().for_user(self.request.user).values_list("id", flat=True)
        return {**super().get_serializer_context(), "active_ids": set(active)}
