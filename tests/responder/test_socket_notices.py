"""Notices on /ws/events (acknowledgements, incidents, cameras offline) reach only the
live sockets of users who may see them. Real consumer, real Redis pub/sub, real database.

An absent notice is shown by order, not by waiting: the fan-out writes everything in the
order Redis delivered it, so a socket whose next frame is a later event got no notice.
"""

import asyncio
import json

import pytest
import websockets
from channels.db import database_sync_to_async
from django.test import Client

from cameras.health import camera_health_record
from cameras.models import StreamKind
from responder.alarms.camera_notices import reason_public
from responder.alarms.events import announce
from responder.core.announce import it_warn
from responder.incidents.services import incident_close, incident_open
from tests.factories import (
    BuildingFactory,
    CameraFactory,
    DoorFactory,
    GrantFactory,
    GroupFactory,
    UserFactory,
    event_store,
    sign_in_verified,
)
from tests.responder.test_events_socket import resumed, signed_in, socket

pytestmark = pytest.mark.django_db(transaction=True)

CREDENTIALED_URL = "rtsp://admin:s3cret@127.0.0.1:9/axis-media/media.amp"


@database_sync_to_async
def user_with(capabilities: list[str], **where) -> object:
    user = UserFactory()
    GrantFactory(user=user, capabilities=capabilities, **where)
    return user


async def live_socket(user):
    communicator = socket(await database_sync_to_async(signed_in)(user))
    replayed = await resumed(communicator)
    return communicator, replayed


async def stored(door):
    event = await database_sync_to_async(event_store)(door)
    await database_sync_to_async(announce)(event)
    return event


async def next_frame(communicator) -> dict:
    # The server pings an idle socket every few seconds (responder.events.HEARTBEAT_SECONDS).
    while (frame := await communicator.receive_json_from(timeout=5))["type"] == "ping":
        pass
    return frame


async def next_is_event(communicator, event) -> bool:
    frame = await next_frame(communicator)
    return (frame["type"], frame.get("seq")) == ("event", event.seq)


@database_sync_to_async
def acknowledge(user, event) -> tuple[int, dict]:
    client = Client()
    sign_in_verified(client, user)
    response = client.post(f"/api/v1/events/{event.id}/ack")
    return response.status_code, response.json()


async def test_an_ack_reaches_the_sockets_that_see_the_event_and_no_others():
    door = await database_sync_to_async(DoorFactory)()
    elsewhere = await database_sync_to_async(DoorFactory)()
    officer = await user_with(["alarms"], building=door.building)
    dispatch = await user_with(["alarms"], building=door.building)
    stranger = await user_with(["alarms"], building=elsewhere.building)
    event = await stored(door)
    seen, replayed = await live_socket(dispatch)
    unseen, _ = await live_socket(stranger)
    assert [f["seq"] for f in replayed if f["type"] == "event"] == [event.seq]

    status, record = await acknowledge(officer, event)

    assert status == 201
    frame = await next_frame(seen)
    assert frame == {"type": "ack", "seq": event.seq, "event": event.id, "acks": record["acks"]}
    assert [a["user"] for a in frame["acks"]] == [officer.pk]
    later = await stored(elsewhere)
    assert await next_is_event(unseen, later)

    assert (await acknowledge(officer, event))[0] == 200  # again: nothing new to say
    await acknowledge(dispatch, event)
    frame = await next_frame(seen)
    assert [a["user"] for a in frame["acks"]] == [officer.pk, dispatch.pk]
    await seen.disconnect()
    await unseen.disconnect()


@pytest.fixture
def campus():
    """A building with a door; the fire group; a firefighter whose alarms are elsewhere."""
    door = DoorFactory()
    fire = GroupFactory(name="fire")
    firefighter = UserFactory()
    firefighter.groups.add(fire)
    GrantFactory(user=firefighter, capabilities=["alarms"], building=BuildingFactory())
    return {"campus": door.building.campus, "door": door, "fire": fire, "ff": firefighter}


async def test_an_incident_reaches_its_responders_and_not_an_unrelated_user(campus):
    dispatch = await user_with(["incidents", "alarms"], campus=campus["campus"])
    stranger = await user_with(["alarms"], building=campus["door"].building)
    responder, _ = await live_socket(campus["ff"])
    unrelated, _ = await live_socket(stranger)

    incident = await database_sync_to_async(incident_open)(
        campus=campus["campus"],
        title="Smoke in the gym",
        by=dispatch,
        responder_groups=[campus["fire"]],
        grant_hours=4,
    )

    opened = await next_frame(responder)
    assert opened["type"] == "incident"
    assert opened["incident"]["id"] == incident.id
    assert opened["incident"]["status"] == "open"
    assert opened["incident"]["responder_groups"] == [campus["fire"].id]
    later = await stored(campus["door"])
    assert await next_is_event(unrelated, later)

    await database_sync_to_async(incident_close)(incident=incident, by=dispatch)
    closed = await next_frame(responder)
    assert closed["type"] == "incident" and closed["incident"]["status"] == "closed"
    await responder.disconnect()
    await unrelated.disconnect()


async def test_a_camera_going_offline_warns_those_who_may_watch_it_without_its_url():
    camera = await database_sync_to_async(CameraFactory)(main_stream_url=CREDENTIALED_URL)
    door = await database_sync_to_async(DoorFactory)(building=camera.building)
    viewer = await user_with(["live", "alarms"], building=camera.building)
    doors_only = await user_with(["alarms"], building=camera.building)
    watching, _ = await live_socket(viewer)
    blind, _ = await live_socket(doors_only)

    # Committed by camera_health_record's own transaction: the signal fires after it.
    await database_sync_to_async(camera_health_record)(
        camera=camera,
        stream=StreamKind.MAIN,
        info=None,
        reason=f"The camera did not answer: Connection refused: '{CREDENTIALED_URL}'",
    )

    frame = await next_frame(watching)
    assert frame["type"] == "camera"
    assert (frame["severity"], frame["state"], frame["stream"]) == ("warning", "offline", "main")
    assert frame["camera"] == {
        "id": camera.id,
        "name": camera.name,
        "building": camera.building_id,
        "floor": camera.floor_id,
    }
    assert frame["reason"] == "The camera did not answer: Connection refused"
    assert "rtsp" not in frame["reason"] and "s3cret" not in frame["reason"]
    later = await stored(door)
    assert await next_is_event(blind, later)
    await watching.disconnect()
    await blind.disconnect()


async def test_a_camera_already_offline_sends_no_second_warning():
    camera = await database_sync_to_async(CameraFactory)()
    door = await database_sync_to_async(DoorFactory)(building=camera.building)
    viewer = await user_with(["live", "alarms"], building=camera.building)
    watching, _ = await live_socket(viewer)
    offline = database_sync_to_async(camera_health_record)

    await offline(camera=camera, stream=StreamKind.MAIN, info=None, reason="No answer.")
    await offline(camera=camera, stream=StreamKind.MAIN, info=None, reason="Still no answer.")
    later = await stored(door)

    assert (await next_frame(watching))["reason"] == "No answer."
    assert await next_is_event(watching, later)
    await watching.disconnect()


def test_a_reason_loses_every_url_and_credential():
    reasons = [
        "The camera connection failed: 401 Unauthorized (http://root:pw@cam.local/axis-cgi)",
        "Refused by admin:hunter2@cam.local [rtsp://cam.local/mobotix.h264]",
        f'Could not open "{CREDENTIALED_URL}"',
    ]
    public = [reason_public(reason) for reason in reasons]
    assert public == [
        "The camera connection failed: 401 Unauthorized",
        "Refused by",
        "Could not open",
    ]
    assert reason_public(CREDENTIALED_URL) == "The camera cannot be reached."


async def live_on(port: int, user) -> websockets.ClientConnection:
    cookie = await database_sync_to_async(signed_in)(user)
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/events",
        additional_headers={"Origin": f"http://127.0.0.1:{port}", "Cookie": cookie},
    )
    await ws.send(json.dumps({"type": "resume", "after": 0}))
    while (await received(ws))["type"] != "live":
        pass
    return ws


async def received(ws: websockets.ClientConnection) -> dict:
    while (frame := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] == "ping":
        pass
    return frame


@pytest.mark.slow
async def test_notices_reach_the_sockets_on_every_daphne_and_only_theirs(daphnes):
    camera = await database_sync_to_async(CameraFactory)(main_stream_url=CREDENTIALED_URL)
    door = await database_sync_to_async(DoorFactory)(building=camera.building)
    elsewhere = await database_sync_to_async(DoorFactory)()
    officer = await user_with(["alarms"], building=door.building)
    dispatch = await user_with(["alarms", "live"], building=door.building)
    stranger = await user_with(["alarms", "live"], building=elsewhere.building)
    event = await stored(door)
    first, second = [await live_on(port, dispatch) for port in daphnes]
    unseen = await live_on(daphnes[1], stranger)

    status, record = await acknowledge(officer, event)
    await database_sync_to_async(camera_health_record)(
        camera=camera, stream=StreamKind.SUB, info=None, reason=f"Timed out: {CREDENTIALED_URL}"
    )
    later = await stored(elsewhere)

    assert status == 201
    for ws in (first, second):
        ack, warning = await received(ws), await received(ws)
        assert (ack["type"], ack["event"], ack["acks"]) == ("ack", event.id, record["acks"])
        assert (warning["type"], warning["camera"]["id"]) == ("camera", camera.id)
        assert (warning["stream"], warning["reason"]) == ("sub", "Timed out")
    assert (await received(unseen))["seq"] == later.seq
    for ws in (first, second, unseen):
        await ws.close()


@pytest.mark.slow
async def test_a_warning_for_it_reaches_district_it_and_no_one_else(daphnes):
    door = await database_sync_to_async(DoorFactory)()
    it = await user_with(["alarms", "manage"])
    principal = await user_with(["alarms", "manage"], building=door.building)
    it_socket = await live_on(daphnes[1], it)
    other = await live_on(daphnes[0], principal)

    await database_sync_to_async(it_warn)(
        kind="account.locked", text="officer-12 is locked out.", details={"user": 12}
    )
    later = await stored(door)

    warning = await received(it_socket)
    assert (warning["type"], warning["kind"]) == ("warning", "account.locked")
    assert (warning["text"], warning["details"]) == ("officer-12 is locked out.", {"user": 12})
    assert (await received(it_socket))["seq"] == later.seq
    assert (await received(other))["seq"] == later.seq
    for ws in (it_socket, other):
        await ws.close()
