from django.db.models.fields.files import FieldFile
from rest_framework import serializers

from accesslog.serializers import DoorPlacementSerializer
from cameras.serializers import CameraPlacementSerializer
from maps.models import Building, Campus, Floor


class PlanURLField(serializers.FileField):
    """The plan's URL without scheme or host: right behind any proxy, and same-origin for
    the service worker's cache."""

    # A FileField hands over its FieldFile (the stubs say any File).
    def to_representation(self, value: FieldFile) -> str | None:  # type: ignore[override]
        return value.url if value else None


class PlanLabelSerializer(serializers.Serializer):
    """A name the app draws over the plan at a readable size (maps.plans.validate_plan_labels)."""

    text = serializers.CharField(read_only=True)
    x = serializers.FloatField(read_only=True)
    y = serializers.FloatField(read_only=True)
    width = serializers.FloatField(read_only=True, required=False)


class FloorTreeSerializer(serializers.ModelSerializer):
    plan = PlanURLField(read_only=True)
    labels = PlanLabelSerializer(many=True, read_only=True)
    cameras = CameraPlacementSerializer(many=True, read_only=True)
    doors = DoorPlacementSerializer(many=True, read_only=True)

    class Meta:
        model = Floor
        fields = [
            "id", "name", "level", "plan", "plan_width", "plan_height", "labels", "cameras", "doors",
        ]  # fmt: skip
        read_only_fields = fields


class BuildingTreeSerializer(serializers.ModelSerializer):
    floors = FloorTreeSerializer(many=True, read_only=True)
    unplaced_cameras = CameraPlacementSerializer(many=True, read_only=True)
    unplaced_doors = DoorPlacementSerializer(many=True, read_only=True)

    class Meta:
        model = Building
        fields = [
            "id", "name", "site_x", "site_y", "floors", "unplaced_cameras", "unplaced_doors",
        ]  # fmt: skip
        read_only_fields = fields


class CampusTreeSerializer(serializers.ModelSerializer):
    site_plan = PlanURLField(read_only=True, allow_null=True)
    labels = PlanLabelSerializer(many=True, read_only=True)
    buildings = BuildingTreeSerializer(many=True, read_only=True)

    class Meta:
        model = Campus
        fields = [
            "id", "name", "short_name", "site_plan", "site_plan_width", "site_plan_height",
            "labels", "buildings",
        ]  # fmt: skip
        read_only_fields = fields
