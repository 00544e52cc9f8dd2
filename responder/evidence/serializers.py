from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from cameras.models import Camera
from responder.evidence.models import Export, Share
from responder.evidence.services import MAX_CAMERAS, SHARE_DEFAULT_DAYS, SHARE_MAX_DAYS


class ExportRequestSerializer(serializers.Serializer):
    cameras = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=1,
        max_length=MAX_CAMERAS,
        error_messages={"max_length": f"At most {MAX_CAMERAS} cameras per export."},
    )
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    reason = serializers.CharField(max_length=2000)
    incident = serializers.IntegerField(min_value=1, allow_null=True, default=None)

    def validate(self, data: dict) -> dict:
        if data["end"] <= data["start"]:
            raise serializers.ValidationError({"end": "end must be after start."})
        minutes = settings.EXPORT_MAX_MINUTES
        if (data["end"] - data["start"]).total_seconds() > minutes * 60:
            raise serializers.ValidationError(
                {"end": f"An export covers at most {minutes} minutes."}
            )
        return data


class ExportCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class ShareSerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(source="usable")

    class Meta:
        model = Share
        fields = ["id", "note", "created_at", "expires_at", "revoked_at", "active"]


class ExportSerializer(serializers.ModelSerializer):
    cameras: serializers.PrimaryKeyRelatedField[Camera] = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True
    )
    download = serializers.SerializerMethodField()
    shares = ShareSerializer(many=True, read_only=True)
    created_by = serializers.CharField(source="created_by.get_username", read_only=True)

    class Meta:
        model = Export
        fields = [
            "id", "status", "progress", "cameras", "start", "end", "bytes", "download",
            "manifest_sha256", "failure", "reason", "incident", "created_at", "created_by",
            "hold", "shares",
        ]  # fmt: skip

    def get_download(self, export: Export) -> str | None:
        """A signed URL to the zip, valid for at most 5 minutes; null until ready."""
        return self.context.get("downloads", {}).get(export.pk)


class ShareRequestSerializer(serializers.Serializer):
    expires_in_days = serializers.IntegerField(
        min_value=1, max_value=SHARE_MAX_DAYS, default=SHARE_DEFAULT_DAYS
    )
    note = serializers.CharField(max_length=300, allow_blank=True, default="")


class ShareCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()
