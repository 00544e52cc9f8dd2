import io

import pytest

from cameras.models import Camera
from cameras.services import camera_import_csv
from responder.core.models import AuditEntry
from tests.factories import (
    BuildingFactory,
    CameraFactory,
    CampusFactory,
    FloorFactory,
    UserFactory,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db
HEADER = (
    "name,building,vendor,model,tags,main_stream_url,sub_stream_url,username,password,"
    "floor,x,y,heading,field_of_view,enabled"
)


@pytest.fixture
def lobby_floor():
    campus = CampusFactory(name="Lincoln High School", short_name="HS")
    return FloorFactory(building__campus=campus, building__name="Main", name="Ground", level=0)


def run(*lines: str, header: str = HEADER):
    file = io.BytesIO("\n".join([header, *lines]).encode())
    return camera_import_csv(file=file, by=UserFactory())


def errors(result) -> list[tuple[int, str]]:
    return [(error.line, error.message) for error in result.errors]


def test_it_imports_every_row_when_all_are_good(lobby_floor):
    result = run(
        "HS Main Entrance – Lobby,HS / Main,Mobotix,M16,entrance;hallway,rtsp://10.0.0.5/main,"
        "rtsp://10.0.0.5/sub,svc,pw1,Ground,100,200,90,60,yes",
        "HS Parking North,Lincoln High School / Main,,,parking exterior,https://10.0.0.6/mjpg,"
        ",,,,,,,,",
    )

    assert result.ok, result.errors
    lobby = Camera.objects.get(name="HS Main Entrance – Lobby")
    assert (lobby.building, lobby.floor, lobby.x, lobby.y) == (
        lobby_floor.building, lobby_floor, 100, 200,
    )  # fmt: skip
    assert (lobby.vendor, lobby.model, lobby.heading, lobby.field_of_view) == (
        "mobotix", "M16", 90, 60,
    )  # fmt: skip
    assert (lobby.username, lobby.password, lobby.enabled) == ("svc", "pw1", True)
    assert sorted(tag.slug for tag in lobby.tags.all()) == ["entrance", "hallway"]
    parking = Camera.objects.get(name="HS Parking North")
    assert (parking.vendor, parking.placement, parking.username) == ("axis", None, None)
    assert sorted(tag.slug for tag in parking.tags.all()) == ["exterior", "parking"]


def test_it_reports_every_bad_row_with_its_line_and_imports_nothing(lobby_floor):
    CameraFactory(building=lobby_floor.building, name="Taken")
    result = run(
        "Good,Main,axis,,,rtsp://10.0.0.1/a,,,,,,,,,",
        "Lost,Nowhere Hall,axis,,,rtsp://10.0.0.2/a,,,,,,,,,",
        "Bad URL,Main,axis,,,ftp://10.0.0.3/a,,,,,,,,,",
        "Good,Main,axis,,,rtsp://10.0.0.4/a,,,,,,,,,",
        "Taken,Main,axis,,,rtsp://10.0.0.5/a,,,,,,,,,",
        "Bad number,Main,axis,,,rtsp://10.0.0.6/a,,,,Ground,ten,5,,,",
        "Bad vendor,Main,hikvision,,,rtsp://10.0.0.7/a,,,,,,,,,",
        "Bad heading,Main,axis,,,rtsp://10.0.0.8/a,,,,,,,400,,",
        "Half placed,Main,axis,,,rtsp://10.0.0.9/a,,,,Ground,5,,,,",
        "Bad floor,Main,axis,,,rtsp://10.0.0.10/a,,,,Roof,1,2,,,",
        ",Main,axis,,,rtsp://10.0.0.11/a,,,,,,,,,",
        "Bad enabled,Main,axis,,,rtsp://10.0.0.12/a,,,,,,,,,maybe",
        "Too many,Main,axis,,,rtsp://10.0.0.13/a,,,,,,,,,,extra",
    )

    found = errors(result)
    assert [line for line, _ in found] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    messages = dict(found)
    assert "Unknown building “Nowhere Hall”" in messages[3]
    assert messages[4].startswith("main_stream_url:")
    assert "Duplicate name" in messages[5] and "line 2" in messages[5]
    assert "Duplicate name" in messages[6]
    assert "x: “ten” is not a number" in messages[7]
    assert "Unknown vendor “hikvision”" in messages[8]
    assert messages[9].startswith("heading:")
    assert "both x and y" in messages[10]
    assert "Unknown floor “Roof”" in messages[11]
    assert messages[12].startswith("name:")
    assert "“maybe” is not yes or no" in messages[13]
    assert "More cells than columns" in messages[14]
    assert list(Camera.objects.values_list("name", flat=True)) == ["Taken"]


def test_it_reports_a_missing_or_unknown_column_on_the_first_line(lobby_floor):
    result = run("Lobby,Main,rtsp://10.0.0.1/a", header="name,building,stream")

    found = errors(result)
    assert found[0] == (1, "Missing column “main_stream_url”.")
    assert found[1][0] == 1
    assert "Unknown column “stream”" in found[1][1]
    assert not Camera.objects.exists()


def test_it_needs_the_campus_when_a_building_name_is_not_unique(lobby_floor):
    BuildingFactory(name="Main")

    ambiguous = run("A,Main,,,,rtsp://10.0.0.1/a,,,,,,,,,")
    by_campus = run("A,HS / Main,,,,rtsp://10.0.0.1/a,,,,,,,,,")

    assert "write “Campus / Building”" in errors(ambiguous)[0][1]
    assert by_campus.ok
    assert Camera.objects.get().building == lobby_floor.building


def test_it_takes_only_the_columns_it_needs(lobby_floor):
    result = run("Gym,Main,rtsp://10.0.0.1/a", header="\ufeffName, Building ,main_stream_url")

    assert result.ok, result.errors
    assert Camera.objects.get().name == "Gym"


def test_it_rejects_a_file_that_is_not_text():
    result = camera_import_csv(file=io.BytesIO(b"\xff\xfe\x00bad"), by=UserFactory())

    assert not result.ok
    assert "not a readable CSV file" in result.errors[0].message


def test_the_admin_imports_a_good_file_and_writes_an_audit_row(client, lobby_floor):
    sign_in_verified(client, UserFactory(is_superuser=True, is_staff=True))
    content = f"{HEADER}\nLobby,Main,axis,,,rtsp://10.0.0.1/a,,,,,,,,,\n".encode()
    upload = io.BytesIO(content)
    upload.name = "cameras.csv"

    response = client.post("/admin/cameras/camera/import/", {"file": upload})

    assert response.status_code == 302
    camera = Camera.objects.get()
    entry = AuditEntry.objects.get(action="camera.import")
    assert entry.details == {"file": "cameras.csv", "cameras": [camera.id]}


def test_the_admin_shows_every_bad_row_and_imports_nothing(client, lobby_floor):
    sign_in_verified(client, UserFactory(is_superuser=True, is_staff=True))
    content = (
        f"{HEADER}\nLobby,Main,axis,,,rtsp://10.0.0.1/a,,,,,,,,,\n"
        "Lost,Nowhere Hall,axis,,,rtsp://10.0.0.2/a,,,,,,,,,\n"
    ).encode()
    upload = io.BytesIO(content)
    upload.name = "cameras.csv"

    response = client.post("/admin/cameras/camera/import/", {"file": upload})

    assert response.status_code == 200
    assert "Nothing was imported" in response.text
    assert "Unknown building “Nowhere Hall”" in response.text
    assert not Camera.objects.exists()
    assert not AuditEntry.objects.filter(action="camera.import").exists()


def test_credentials_written_into_a_stream_url_move_to_the_encrypted_fields(lobby_floor):
    result = run(
        "Gym,Main,,,,rtsp://svc:p%40ss@10.0.0.7/main,rtsp://svc:p%40ss@10.0.0.7/sub,,,,,,,,"
    )

    assert result.ok, result.errors
    gym = Camera.objects.get(name="Gym")
    assert (gym.main_stream_url, gym.sub_stream_url) == (
        "rtsp://10.0.0.7/main",
        "rtsp://10.0.0.7/sub",
    )
    assert (gym.username, gym.password) == ("svc", "p@ss")


def test_it_refuses_a_url_whose_credentials_differ_from_the_columns(lobby_floor):
    result = run("Gym,Main,,,,rtsp://svc:one@10.0.0.7/main,,svc,two,,,,,,")

    assert not result.ok
    assert "differ" in errors(result)[0][1]
    assert not Camera.objects.exists()
