from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accesslog.rendering import event_payload
from maps.models import Campus
from responder.models import Grant, Incident, IncidentEntry


class IncidentSerializer(serializers.ModelSerializer):
    opened_by = serializers.SlugRelatedField(read_only=True, slug_field="username")
    responders = serializers.SlugRelatedField(many=True, read_only=True, slug_field="username")

    class Meta:
        model = Incident
        fields = [
            "id", "campus", "title", "status", "opened_by", "opened_at", "closed_at",
            "source_event", "responder_groups", "responders", "grant_hours",
        ]  # fmt: skip
        read_only_fields = fields


class IncidentEntrySerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(read_only=True, slug_field="username")
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


class IncidentOpenSerializer(serializers.Serializer):
    campus = serializers.PrimaryKeyRelatedField(queryset=Campus.objects.all())
    title = serializers.CharField(max_length=200)
    responder_groups = serializers.PrimaryKeyRelatedField(
        queryset=Group.objects.all(), many=True, required=False, default=list
    )
    grant_hours = serializers.IntegerField(min_value=1, max_value=72, default=4)


class IncidentNoteSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=5000)


class IncidentAssignSerializer(serializers.Serializer):
    users = serializers.SlugRelatedField(
        queryset=get_user_model().objects.filter(is_active=True),
        slug_field="username",
        many=True,
        allow_empty=False,
    )


class EmergencyGrantSerializer(serializers.ModelSerializer):
    incident_title = serializers.CharField(source="incident.title", read_only=True)
    grantee = serializers.CharField(read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = Grant
        fields = [
            "id", "incident", "incident_title", "grantee", "campus", "capabilities",
            "starts_at", "ends_at", "active",
        ]  # fmt: skip
        read_only_fields = fields

    def get_active(self, grant: Grant) -> bool:
        return grant.pk in self.context["active_ids"]
