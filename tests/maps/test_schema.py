from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.routers import SimpleRouter

from accesslog.api import DoorViewSet
from cameras.api import CameraViewSet
from responder.maptree.urls import urlpatterns as map_patterns


def test_the_district_endpoints_have_a_schema_without_warnings():
    # Only this part's views: other endpoints answer for their own schema.
    router = SimpleRouter()
    router.register("cameras", CameraViewSet, basename="camera")
    router.register("doors", DoorViewSet, basename="door")
    patterns = [path("api/v1/", include([*map_patterns, *router.urls]))]
    GENERATOR_STATS.reset()

    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)

    assert not GENERATOR_STATS, "drf-spectacular reported warnings or errors"
    paths = {"/api/v1/campuses/", "/api/v1/cameras/", "/api/v1/cameras/{id}/"}
    assert paths | {"/api/v1/doors/", "/api/v1/doors/{id}/"} <= set(schema["paths"])
    camera = schema["components"]["schemas"]["Camera"]["properties"]
    assert not {"main_stream_url", "sub_stream_url", "username", "password"} & set(camera)
    assert schema["components"]["schemas"]["DoorPlacement"]["properties"]["cameras"]["items"]
