"""The API fuzzed from its own schema: every operation of /api/v1/schema/, for a user of
each role, answers without a 5xx and as the schema says (status codes, content types,
bodies).

Schemathesis draws the requests (valid and invalid ones), derandomized and bounded, and
sends them to Django's WSGI app in this process, on the test database, signed in as
people are (a password and a TOTP code; a session cookie and the CSRF token). A small
district is there for the paths with ids to hit: half the drawn ids are swapped for real
ones. Nothing is left out: no operation sends anything outside (a push subscription is
only checked and stored; incidents queue their pushes for a worker that is not running,
and live video and snapshots meet a camera address that refuses at once).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import Group
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from responder.core import roles
from responder.core.roles import roles_ensure
from responder.incidents.services import incident_open
from tests.factories import (
    AccessSystemFactory,
    BuildingFactory,
    CameraFactory,
    DoorFactory,
    GrantFactory,
    UserFactory,
    event_store,
)
from tests.signin_helpers import api_sign_in

VAPID_PRIVATE_KEY = base64.urlsafe_b64encode(bytes(range(1, 33))).rstrip(b"=").decode()
EXAMPLES = 6  # per operation and role: the module runs in under 2 min on this machine
ROLES = [
    roles.DISTRICT_OFFICE,
    roles.SCHOOL_ADMINISTRATORS,
    roles.FACILITIES,
    roles.POLICE,
    roles.FIRE,
    roles.DISTRICT_IT,
]


@schemathesis.check
def no_fault_of_ours(ctx: Any, response: Any, case: Any) -> None:
    """A 5xx only where documented and with Retry-After (a camera that is away): never a
    500, nor any other failure of ours."""
    if response.status_code >= 500:
        documented = str(response.status_code) in case.operation.definition.raw["responses"]
        retry = any(name.lower() == "retry-after" for name in response.headers)
        assert documented and retry, f"{response.status_code}: {response.text[:300]}"


CHECKS = [
    no_fault_of_ours,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@contextlib.contextmanager
def in_process() -> Iterator[None]:
    """As Django's test Client does around each request (so not around its own): the end
    of a request would otherwise close the connection that holds the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def small_district() -> tuple[int, dict[str, list]]:
    """A campus with a building, two cameras, two doors, an alarm and the incident it
    opened: its id, and the ids a path may name (by parameter, or by path for `id`)."""
    building = BuildingFactory()
    cameras = [
        CameraFactory(building=building, tags=["parking"]),
        CameraFactory(building=building),
    ]
    system = AccessSystemFactory()
    doors = [DoorFactory(building=building, system=system) for _ in range(2)]
    doors[0].cameras.add(*cameras)
    event = event_store(doors[0])
    incident = incident_open(
        campus=building.campus, title="Forced entry", by=None, grant_hours=2,
        responder_groups=Group.objects.filter(name__in=roles.EMERGENCY_ROLES), source_event=event,
    )  # fmt: skip
    return building.campus_id, {
        "camera_id": [c.pk for c in cameras],
        "slug": [system.slug],
        "/api/v1/cameras/": [c.pk for c in cameras],
        "/api/v1/doors/": [d.pk for d in doors],
        "/api/v1/events/": [event.pk],
        "/api/v1/incidents/": [incident.pk],
    }


def member_of(role: str, campus_id: int) -> Any:
    user = UserFactory()
    user.groups.add(Group.objects.get(name=role))
    if role == roles.SCHOOL_ADMINISTRATORS:
        capabilities = list(roles.SCHOOL_ADMINISTRATOR_CAPABILITIES)
        GrantFactory(user=user, campus_id=campus_id, capabilities=capabilities)
    return user


def signed_in_schema(role: str) -> tuple[Any, dict[str, dict], dict[str, list]]:
    """The schema as a member of `role` reads it, the cookies and headers they send, and
    the real ids."""
    roles_ensure()
    campus_id, ids = small_district()
    client = api_sign_in(member_of(role, campus_id))
    answer = client.get("/api/v1/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})
    assert answer.status_code == 200, answer.content
    schema = schemathesis.openapi.from_dict(answer.json())
    schema.app = get_wsgi_application()
    signed_in = {
        "cookies": {morsel.key: morsel.value for morsel in client.cookies.values()},
        "headers": {"X-CSRFToken": client.csrf_token},
    }
    return schema, signed_in, ids


def real_ids(case: Any, known: dict[str, list]) -> None:
    """Half the drawn ids (the even ones) become ids of real objects in the district."""
    for name, value in (case.path_parameters or {}).items():
        choices = known.get(name if name != "id" else case.path.split("{")[0])
        if not choices:
            continue
        if name == "slug" and len(value) % 2 == 0:
            case.path_parameters[name] = choices[0]
        elif isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = choices[value // 2 % len(choices)]


def fuzz(operation: Any, signed_in: dict[str, dict], known: dict[str, list]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        real_ids(case, known)
        case.call_and_validate(**signed_in, checks=CHECKS)

    run()


def signing_out_last(schema: Any) -> list[Any]:
    """Sign-in and sign-out end the session the others are fuzzed with: they come last."""
    operations = [result.ok() for result in schema.get_all_operations()]
    return sorted(operations, key=lambda op: op.path.startswith("/api/v1/auth/log"))


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_passwords")
@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_as_its_schema_says_for_every_role(role, settings):
    # No video worker runs here: a live view answers "not started" after 1 s, not 15.
    settings.LIVE_START_TIMEOUT = 1
    # As production has it (settings refuse to start without one when pushes are on).
    settings.VAPID_PRIVATE_KEY = VAPID_PRIVATE_KEY
    schema, signed_in, known = signed_in_schema(role)
    failures = []
    with in_process():
        for operation in signing_out_last(schema):
            try:
                fuzz(operation, signed_in, known)
            except (Exception, BaseExceptionGroup) as error:  # every operation's, not the first
                failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)


# --- What the fuzzing found, each kept by a plain test ----------------------------------


@pytest.mark.django_db
def test_a_path_no_api_view_matches_answers_the_apis_json_404(client):
    answer = client.post("/api/v1/access/%0F/events", b"{}", content_type="application/json")

    assert answer.status_code == 404 and answer.json() == {"detail": "Not found."}
    assert client.get("/no-such-page").status_code == 404  # the rest: Django's page


@pytest.mark.django_db
def test_the_schema_documents_the_answers_the_fuzzing_met(verified_api_client):
    client = verified_api_client(UserFactory())
    schema = client.get("/api/v1/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})
    paths, components = schema.json()["paths"], schema.json()["components"]["schemas"]

    assert {"400", "401", "404", "413"} <= paths["/api/v1/access/{slug}/events"]["post"][
        "responses"
    ].keys()
    assert {"200", "201", "403", "404"} <= paths["/api/v1/events/{id}/ack"]["post"][
        "responses"
    ].keys()
    assert {"429", "503"} <= paths["/api/v1/cameras/{camera_id}/live"]["post"]["responses"].keys()
    assert "503" in paths["/api/v1/cameras/{camera_id}/snapshot"]["get"]["responses"]
    assert "400" in paths["/api/v1/push/subscriptions"]["delete"]["responses"]
    assert components["Incident"]["properties"]["opened_by"]["nullable"] is True
    assert components["IncidentEntry"]["properties"]["user"]["nullable"] is True
    assert components["NothingRecorded"]["required"] == ["detail"]
