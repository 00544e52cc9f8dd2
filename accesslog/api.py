from __future__ import annotations

from urllib.parse import urlencode

import django_filters
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accesslog.models import (
    Door,
    DoorCamera,
    DoorQuerySet,
    Event,
    EventAck,
    EventQuerySet,
)
from accesslog.rendering import ack_record, event_payloads, with_payload_relations
from accesslog.serializers import DoorSerializer
from accesslog.services import event_ack
from cameras.models import Camera
from responder.core.access import signed_in
from responder.core.capabilities import VIEWING, Capability

# --- Doors ------------------------------------------------------------------------------


def visible_door_cameras(user: User | AnonymousUser) -> Prefetch:
    """A door's camera links, nearest first, limited to the cameras the user may watch."""
    links = DoorCamera.objects.filter(camera__in=Camera.objects.visible_to(user, *VIEWING))
    return Prefetch("door_cameras", links.order_by("rank", "id"))


class DoorFilter(django_filters.FilterSet):
    building = django_filters.NumberFilter(field_name="building__id")
    campus = django_filters.NumberFilter(field_name="building__campus__id")
    system = django_filters.CharFilter(field_name="system__slug", label="Access system slug")
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains")
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")

    class Meta:
        model = Door
        fields = ["building", "campus", "system", "search", "q"]


@extend_schema_view(
    list=extend_schema(summary="Doors whose alarms the user may see"),
    retrieve=extend_schema(summary="One door (404 outside the user's scope)"),
)
class DoorViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = DoorSerializer
    filterset_class = DoorFilter
    queryset = Door.objects.none()  # for the schema; the real one depends on the user

    def get_queryset(self) -> DoorQuerySet:
        user = self.request.user
        return (
            Door.objects.visible_to(user, Capability.ALARMS)
            .select_related("building", "system")
            .prefetch_related(visible_door_cameras(user))
        )


# --- Events -----------------------------------------------------------------------------

PAGE_DEFAULT, PAGE_MAX = 100, 500


class EventList(APIView):
    @extend_schema(
        summary="Events the user may see, in seq order, after a seq",
        parameters=[
            OpenApiParameter("after", int, description="The last seq seen (default 0)."),
            OpenApiParameter("limit", int, description=f"At most {PAGE_MAX} (default 100)."),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        after = _int_param(request, "after", 0, low=0, high=2**62)
        limit = _int_param(request, "limit", PAGE_DEFAULT, low=1, high=PAGE_MAX)
        visible = Event.objects.visible_to(request.user).filter(seq__gt=after)
        page = list(_with_history_relations(visible, signed_in(request.user))[:limit])
        last = page[-1].seq if page else after
        more = len(page) == limit
        next_url = f"{request.path}?{urlencode({'after': last, 'limit': limit})}" if more else None
        return Response({"results": event_records(page), "last_seq": last, "next": next_url})


class EventAckView(APIView):
    @extend_schema(
        summary="Acknowledge an event",
        request=None,
        # 201: this user's first acknowledgement; 200: they had acknowledged it already.
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request, pk: int) -> Response:
        visible = _with_history_relations(
            Event.objects.visible_to(signed_in(request.user)), signed_in(request.user)
        )
        event = get_object_or_404(visible, pk=pk)
        _, created = event_ack(event=event, user=signed_in(request.user), request=request)
        event = visible.get(pk=pk)  # again, with the new acknowledgement
        return Response(event_records([event])[0], status=201 if created else 200)


def _int_param(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: ["A whole number."]}) from None
    return min(max(value, low), high)


def _with_history_relations(events: EventQuerySet, viewer: User) -> EventQuerySet:
    acks = EventAck.objects.select_related("user").order_by("at", "id")
    relations = with_payload_relations(events, viewer=viewer)
    return relations.prefetch_related(Prefetch("acks", acks))


def event_records(events: list[Event]) -> list[dict]:
    """The socket's event shape (accesslog.rendering), plus the seq and who acknowledged."""
    return [
        {**payload, "seq": event.seq, "acks": [ack_record(ack) for ack in event.acks.all()]}
        for event, payload in zip(events, event_payloads(events), strict=True)
    ]
