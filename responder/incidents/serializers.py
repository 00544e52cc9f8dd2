from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accesslog.rendering import event_payload
from maps.models import Building, Campus
from responder.core.models import AuditEntry, Grant, Incident, IncidentEntry


class IncidentSerializer(serializers.ModelSerializer):
    # None: opened by an incident rule, not a person.
    opened_by: serializers.SlugRelatedField = serializers.SlugRelatedField(
        read_only=True, slug_field="username", allow_null=True
    )
    responders: serializers.SlugRelatedField = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="username"
    )
    responder_group_names: serializers.SlugRelatedField = serializers.SlugRelatedField(
        source="responder_groups", many=True, read_only=True, slug_field="name"
    )

    class Meta:
        model = Incident
        fields = [
            "id", "campus", "building", "title", "status", "opened_by", "opened_at",
            "closed_at", "source_event", "responder_groups", "responder_group_names",
            "responders", "grant_hours", "grants_end_at",
        ]  # fmt: skip
        read_only_fields = fields


class ResponderGroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ["id", "name"]
        read_only_fields = fields


class IncidentEntrySerializer(serializers.ModelSerializer):
    # None: written by the system (an alarm, a rule, a grant running out).
    user: serializers.SlugRelatedField = serializers.SlugRelatedField(
        read_only=True, slug_field="username", allow_null=True
    )
    event = serializers.SerializerMethodField()
    acknowledged_by = serializers.SerializerMethodField()

    class Meta:
        model = IncidentEntry
        fields = ["id", "at", "kind", "user", "event", "text", "acknowledged_by"]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "nullable": True, "description": "As on the socket."})
    def get_event(self, entry: IncidentEntry) -> dict | None:
        return event_payload(entry.event) if entry.event else None

    @extend_schema_field(
        {"type": "array", "items": {"type": "object"}, "description": "[{user, at}]"}
    )
    def get_acknowledged_by(self, entry: IncidentEntry) -> list[dict]:
        if entry.event is None:
            return []
        return [
            {"user": ack.user.get_username(), "at": ack.at.isoformat()}
            for ack in entry.event.acks.all()
        ]


class IncidentDetailSerializer(IncidentSerializer):
    timeline = IncidentEntrySerializer(many=True, read_only=True)

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "timeline"]
        read_only_fields = fields


def max_hours() -> int:
    return settings.INCIDENT_MAX_HOURS


class IncidentOpenSerializer(serializers.Serializer):
    """The view narrows `campus`, `building` and `responder_groups` to what the user may
    name: anything else reads as unknown, whether it exists or not."""

    campus = serializers.PrimaryKeyRelatedField(queryset=Campus.objects.none())
    building = serializers.PrimaryKeyRelatedField(
        queryset=Building.objects.none(), required=False, allow_null=True, default=None
    )
    title = serializers.CharField(max_length=200)
    responder_groups = serializers.PrimaryKeyRelatedField(
        queryset=Group.objects.none(), many=True, required=False, default=list
    )
    grant_hours = serializers.IntegerField(min_value=1, default=4)

    def validate_grant_hours(self, hours: int) -> int:
        if hours > max_hours():
            raise serializers.ValidationError(
                f"At most {max_hours()} hours (INCIDENT_MAX_HOURS); extend it later with a reason."
            )
        return hours

    def validate(self, data: dict) -> dict:
        building = data.get("building")
        if building is not None and building.campus_id != data["campus"].pk:
            raise serializers.ValidationError({"building": "That building is not on the campus."})
        return data


class IncidentNoteSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=5000)


class IncidentAssignSerializer(serializers.Serializer):
    # Names, not users: the view answers every name it may not assign alike, known or not.
    users = serializers.ListField(
        child=serializers.CharField(max_length=150), allow_empty=False, max_length=50
    )


class IncidentExtendSerializer(serializers.Serializer):
    hours = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(min_length=10, max_length=500)

    def validate_hours(self, hours: int) -> int:
        if hours > max_hours():
            raise serializers.ValidationError(f"At most {max_hours()} hours from now.")
        return hours


class EmergencyGrantSerializer(serializers.ModelSerializer):
    incident_title = serializers.CharField(source="incident.title", read_only=True)
    grantee = serializers.CharField(read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = Grant
        fields = [
            "id", "incident", "incident_title", "grantee", "campus", "building",
            "capabilities", "starts_at", "ends_at", "active",
        ]  # fmt: skip
        read_only_fields = fields

    def get_active(self, grant: Grant) -> bool:
        return grant.pk in self.context["active_ids"]


class CustodyRowSerializer(serializers.ModelSerializer):
    """One audit row of an incident's custody trail, with its links in the chain."""

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "action",
            "username",
            "object_type",
            "object_id",
            "object_repr",
            "outcome",
            "ip",
            "user_agent",
            "details",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields
