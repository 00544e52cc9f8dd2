from django.db.models.fields.files import FieldFile
from rest_framework import serializers

from accesslog.serializers import DoorPlacementSerializer
from cameras.serializers import CameraPlacementSerializer
from maps.models import Building, Campus, Floor


class PlanURLField(serializers.FileField):
    """The plan's URL without scheme or host: right behind any proxy, and same-origin for
    the service worker's cache."""

    def to_representation(self, value: FieldFile) -> str | None:
        return value.url if value else None


class FloorTreeSerializer(serializers.ModelSerializer):
    plan = PlanURLField(read_only=True)
    cameras = CameraPlacementSerializer(many=True, read_only=True)
    doors = DoorPlacementSerializer(many=True, read_only=True)

    class Meta:
        model = Floor
        fields = ["id", "name", "level", "plan", "plan_width", "plan_height", "cameras", "doors"]
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
    buildings = BuildingTreeSerializer(many=True, read_only=True)

    class Meta:
        model = Campus
        fields = [
            "id", "name", "short_name", "site_plan", "site_plan_width", "site_plan_height",
            "buildings",
        ]  # fmt: skip
        read_only_fields = fields
