"""The map the PWA caches: places (maps) with the devices on them (cameras, doors), each
cut by the scope rule. Above both layers, since it reads all three."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Prefetch, Q
from django.utils.cache import patch_cache_control
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response

from accesslog.api import visible_door_cameras
from accesslog.models import Door
from cameras.models import Camera
from maps.models import Building, Campus, CampusQuerySet, Floor
from responder.core.capabilities import VIEWING, Capability
from responder.maptree.serializers import CampusTreeSerializer

# On a floor plan: a floor and both coordinates (a deleted floor leaves x and y behind).
PLACED = Q(floor__isnull=False, x__isnull=False, y__isnull=False)


def campus_tree(user: User | AnonymousUser) -> CampusQuerySet:
    """Campuses → buildings → floors with the cameras and doors the user may see on them, in
    a fixed number of queries: one per level and kind, each filtered by the scope rule."""
    cameras = Camera.objects.visible_to(user, *VIEWING).prefetch_related("tags")
    doors = Door.objects.visible_to(user, Capability.ALARMS).prefetch_related(
        visible_door_cameras(user)
    )
    floors = Floor.objects.order_by("level", "id").prefetch_related(
        Prefetch("cameras", cameras.filter(PLACED)), Prefetch("doors", doors.filter(PLACED))
    )
    buildings = Building.objects.visible_to(user).prefetch_related(
        Prefetch("floors", floors),
        Prefetch("cameras", cameras.exclude(PLACED), to_attr="unplaced_cameras"),
        Prefetch("doors", doors.exclude(PLACED), to_attr="unplaced_doors"),
    )
    return Campus.objects.visible_to(user).prefetch_related(Prefetch("buildings", buildings))


@extend_schema(
    summary="The map tree the PWA caches",
    description=(
        "Every campus, building and floor the user may see. On each floor, the cameras "
        "they may watch and the doors whose alarms they may see, with their place on its "
        "plan; cameras and doors not on a plan are listed with their building as "
        "unplaced_cameras and unplaced_doors."
    ),
)
class CampusTreeView(generics.ListAPIView):
    serializer_class = CampusTreeSerializer
    filter_backends: list = []
    queryset = Campus.objects.none()  # for the schema; the real one depends on the user

    def get_queryset(self) -> CampusQuerySet:
        return campus_tree(self.request.user)

    def finalize_response(self, request: Request, response: Response, *args, **kwargs) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        # One user's tree: no shared cache may keep it, and the browser asks every time.
        patch_cache_control(response, private=True, no_cache=True)
        return response
