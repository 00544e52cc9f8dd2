import copy
from datetime import datetime
from typing import Any

from django.db.models import Manager
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accesslog.models import Door, DoorCamera, EventType
from cameras.serializers import PlacementSerializer

# --- Doors ------------------------------------------------------------------------------


@extend_schema_field(
    {"type": "array", "items": {"type": "integer"}, "description": "Camera ids, nearest first."}
)
class DoorCamerasField(serializers.Field):
    """The door's cameras nearest first, as ids; only the prefetched (visible) ones."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="door_cameras", read_only=True, **kwargs)

    def to_representation(self, value: Manager[DoorCamera]) -> list[int]:
        return [link.camera_id for link in value.all()]


class DoorSerializer(serializers.ModelSerializer):
    system: serializers.SlugRelatedField = serializers.SlugRelatedField(
        read_only=True, slug_field="slug"
    )
    campus = serializers.IntegerField(source="building.campus_id", read_only=True)
    cameras = DoorCamerasField()
    placement = PlacementSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Door
        fields = [
            "id", "external_id", "name", "system", "building", "campus", "cameras", "placement",
        ]  # fmt: skip
        read_only_fields = fields


class DoorPlacementSerializer(serializers.ModelSerializer):
    """A door's pin in the map tree."""

    cameras = DoorCamerasField()

    class Meta:
        model = Door
        fields = ["id", "name", "external_id", "floor", "x", "y", "cameras"]
        read_only_fields = fields


# --- Events (ingest) --------------------------------------------------------------------


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an offset: a naive time from a panel's local clock would be guessed."""

    def to_internal_value(self, value: Any) -> datetime:
        try:
            parsed = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:  # well formed but impossible, e.g. month 13
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            self.fail("invalid", format="ISO 8601 with an offset, e.g. 2026-01-05T07:42:10-05:00")
        return super().to_internal_value(value)


def nul_free(value: object) -> None:
    """PostgreSQL's jsonb holds no U+0000, in a key or a value: a 400 here, not a 500 at
    the insert (CharField refuses it by itself; DictField does not look inside)."""
    pending = [value]
    while pending:  # no recursion: ingest's callers bound the depth, connectors included
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            raise serializers.ValidationError("Null characters are not allowed.")
        if isinstance(item, dict):
            pending.extend([*item.keys(), *item.values()])
        elif isinstance(item, list):
            pending.extend(item)


class EventIngestSerializer(serializers.Serializer):
    source_event_id = serializers.CharField(max_length=200)
    type = serializers.ChoiceField(choices=EventType.choices)
    door = serializers.CharField(max_length=100)
    occurred_at = AwareDateTimeField()
    credential = serializers.CharField(max_length=200, required=False, allow_blank=True)
    person = serializers.CharField(max_length=200, required=False, allow_blank=True)
    details = serializers.DictField(required=False, validators=[nul_free])

    def get_fields(self) -> dict[str, serializers.Field]:
        # Every event passes here. DRF deep-copies the declared fields per serializer, which
        # builds each field and its validators anew (~60% of a valid event's validation); a
        # shallow copy is enough, as nothing here changes a field's shared parts once made.
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}
