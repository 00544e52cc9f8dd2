from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from cameras.models import Camera, CameraQuerySet
from cameras.serializers import CameraSerializer
from responder.core.capabilities import VIEWING


class CameraFilter(django_filters.FilterSet):
    building = django_filters.NumberFilter(field_name="building__id")
    campus = django_filters.NumberFilter(field_name="building__campus__id")
    # One tag per slug: the join cannot repeat a camera.
    tag = django_filters.CharFilter(field_name="tags__slug", label="Tag slug")
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains")
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")
    enabled = django_filters.BooleanFilter()

    class Meta:
        model = Camera
        fields = ["building", "campus", "tag", "search", "q", "enabled"]


@extend_schema_view(
    list=extend_schema(summary="Cameras the user may watch, live or recorded"),
    retrieve=extend_schema(summary="One camera (404 outside the user's scope)"),
)
class CameraViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CameraSerializer
    filterset_class = CameraFilter
    queryset = Camera.objects.none()  # for the schema; the real one depends on the user

    def get_queryset(self) -> CameraQuerySet:
        return (
            Camera.objects.visible_to(self.request.user, *VIEWING)
            .select_related("building")
            .prefetch_related("tags")
        )
