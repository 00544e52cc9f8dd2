"""Holds' input and output shapes (issue 17: POST/GET /api/v1/holds, DELETE /holds/<id>)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from responder.recording.models import Hold
from responder.recording.services import OPEN_END

# A hold is placed by hand on a few cameras or a whole district (150+), never more.
HOLD_CAMERAS_MAX = 1000


class HoldCreateSerializer(serializers.Serializer):
    cameras = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        allow_empty=False,
        max_length=HOLD_CAMERAS_MAX,
    )
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    reason = serializers.CharField(max_length=1000)
    until = serializers.DateTimeField(allow_null=True, required=False, default=None)

    def validate(self, data: dict) -> dict:
        if data["end"] <= data["start"]:
            raise serializers.ValidationError({"end": "end must be after start."})
        if data["until"] is not None and data["until"] <= timezone.now():
            raise serializers.ValidationError(
                {"until": "until must be in the future (null: until released)."}
            )
        return data


class HoldReleaseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000)


class HoldSerializer(serializers.ModelSerializer):
    cameras = serializers.SerializerMethodField(help_text="Those in your scope only.")
    end = serializers.SerializerMethodField(
        help_text="null: an open incident's hold, which ends 10 min after it closes."
    )
    # null: placed or released by the system (an incident's hold, a failed export's).
    created_by: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    released_by: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    # The incident it keeps footage for (its own automatic hold, or an export's from it).
    incident_title = serializers.CharField(
        source="incident.title", read_only=True, allow_null=True, default=None
    )
    active = serializers.SerializerMethodField()

    class Meta:
        model = Hold
        fields = [
            "id",
            "cameras",
            "start",
            "end",
            "until",
            "reason",
            "source",
            "incident",
            "incident_title",
            "created_by",
            "created_at",
            "active",
            "released_at",
            "released_by",
            "release_reason",
        ]
        read_only_fields = fields

    def get_cameras(self, hold: Hold) -> list[int]:
        visible = self.context["visible_cameras"]
        return sorted(c.pk for c in hold.cameras.all() if c.pk in visible)

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
    def get_end(self, hold: Hold) -> str | None:
        if hold.end >= OPEN_END:
            return None
        return serializers.DateTimeField().to_representation(hold.end)

    def get_active(self, hold: Hold) -> bool:
        return hold.is_active
