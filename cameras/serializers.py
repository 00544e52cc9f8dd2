from rest_framework import serializers

from cameras.models import Camera


class PlacementSerializer(serializers.Serializer):
    floor = serializers.IntegerField()
    x = serializers.FloatField()
    y = serializers.FloatField()


class CameraSerializer(serializers.ModelSerializer):
    """A camera as any viewer sees it: never its stream URLs or their credentials."""

    campus = serializers.IntegerField(source="building.campus_id", read_only=True)
    tags: serializers.SlugRelatedField = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="slug"
    )
    placement = PlacementSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Camera
        fields = [
            "id", "name", "building", "campus", "tags", "placement",
            "vendor", "model", "heading", "field_of_view", "enabled",
        ]  # fmt: skip
        read_only_fields = fields


class CameraPlacementSerializer(serializers.ModelSerializer):
    """A camera's pin in the map tree."""

    tags: serializers.SlugRelatedField = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="slug"
    )

    class Meta:
        model = Camera
        fields = ["id", "name", "floor", "x", "y", "heading", "field_of_view", "tags", "enabled"]
        read_only_fields = fields
