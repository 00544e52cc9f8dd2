"""Attacks on the access systems' webhook and its secret.

The secret that signs door events is shown once, when it is made or rotated, and never
again on any admin page, so a glance over IT's shoulder or a screenshot cannot leak it.
After a rotation the old secret works only for the overlap window. A malformed signature
or a booby-trapped body is refused with a clear answer and stores nothing.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.request
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.utils import timezone

from accesslog.models import AccessSystem, Event
from accesslog.signatures import HEADER, sign
from responder.core.models import AuditEntry
from tests.accesslog.ingest_helpers import event_json
from tests.factories import AccessSystemFactory, DoorFactory, UserFactory
from tests.servers import HttpClient, http_sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECRET_ON_PAGE = re.compile(rb'<code class="webhook-secret">([^<]+)</code>')


def form_post(client: HttpClient, path: str, fields: list[tuple[str, str]]) -> tuple[int, bytes]:
    data = urlencode(fields).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": client.base,
        "X-CSRFToken": client.csrf_token,
    }
    request = urllib.request.Request(client.base + path, data, headers, method="POST")
    with client.opener.open(request, timeout=30) as response:
        return response.status, response.read()


def it_admin(port: int) -> HttpClient:
    return http_sign_in(port, UserFactory(username="it", is_staff=True, is_superuser=True))


def post_event(port: int, slug: str, body: bytes, signature: bytes) -> tuple[int, dict]:
    connection_ = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection_.putrequest("POST", f"/api/v1/access/{slug}/events")
    connection_.putheader("Content-Type", "application/json")
    connection_.putheader("Content-Length", str(len(body)))
    connection_.putheader(HEADER, signature)  # bytes: sent exactly as the attacker wrote them
    connection_.endheaders(body)
    response = connection_.getresponse()
    answer = response.status, json.loads(response.read() or b"{}")
    connection_.close()
    return answer


def signed_event(port: int, slug: str, secret: str, event_id: str) -> int:
    body = json.dumps(event_json(source_event_id=event_id, door="panel1-door1")).encode()
    return post_event(port, slug, body, sign(body, secret).encode())[0]


def test_the_admin_shows_a_webhook_secret_once_when_made_and_never_again(daphne):
    client = it_admin(daphne)
    fields = [("name", "NetBox East"), ("slug", "netbox-east"), ("kind", "netbox")]

    status, page = form_post(client, "/admin/accesslog/accesssystem/add/", fields)

    system = AccessSystem.objects.get(slug="netbox-east")
    secret = system.webhook_secret.encode()
    assert status == 200 and SECRET_ON_PAGE.findall(page) == [secret]
    pages = [
        f"/admin/accesslog/accesssystem/{system.pk}/change/",
        "/admin/accesslog/accesssystem/",
        f"/admin/accesslog/accesssystem/{system.pk}/history/",
    ]
    for path in pages:
        status, _, body = client.request("GET", path)
        assert status == 200 and secret not in body, path
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT webhook_secret FROM accesslog_accesssystem WHERE id = %s", [system.pk]
        )
        assert system.webhook_secret not in cursor.fetchone()[0]  # encrypted at rest


def test_a_rotated_secret_verifies_during_the_overlap_and_never_after(daphne):
    door = DoorFactory(system=AccessSystemFactory(), external_id="panel1-door1")
    system, old = door.system, door.system.webhook_secret
    client = it_admin(daphne)
    changelist = "/admin/accesslog/accesssystem/"
    action = [("action", "rotate_webhook_secret"), ("_selected_action", str(system.pk))]

    status, page = form_post(client, changelist, [*action, ("index", "0")])

    [new] = [secret.decode() for secret in SECRET_ON_PAGE.findall(page)]
    assert status == 200 and new != old
    assert signed_event(daphne, system.slug, old, "during-old") == 202
    assert signed_event(daphne, system.slug, new, "during-new") == 202
    system.refresh_from_db()
    system.previous_secret_until = timezone.now() - timedelta(seconds=1)  # the overlap ends
    system.save()
    assert signed_event(daphne, system.slug, old, "after-old") == 401
    assert signed_event(daphne, system.slug, new, "after-new") == 202
    stored = set(Event.objects.values_list("source_event_id", flat=True))
    assert stored == {"during-old", "during-new", "after-new"}
    row = AuditEntry.objects.get(action="webhook_secret.rotated")
    assert row.username == "it" and row.object_id == str(system.pk)
    assert new not in json.dumps(row.details) and old not in json.dumps(row.details)


def test_a_non_ascii_signature_is_refused_with_401_and_nothing_stored(daphne):
    system = AccessSystemFactory()
    body = json.dumps(event_json()).encode()
    t = sign(body, system.webhook_secret).split(",")[0]

    status, answer = post_event(daphne, system.slug, body, f"{t},v1=".encode() + "é".encode() * 32)

    assert status == 401 and HEADER in answer["detail"]
    assert not Event.objects.exists()


def test_a_deeply_nested_body_is_refused_with_400_and_nothing_stored(daphne):
    system = AccessSystemFactory()
    deep = "[" * 20_000 + "]" * 20_000
    body = json.dumps(event_json()).replace("}", f', "details": {{"x": {deep}}}}}').encode()

    status, answer = post_event(
        daphne, system.slug, body, sign(body, system.webhook_secret).encode()
    )

    assert status == 400 and "nested" in answer["detail"]
    assert not Event.objects.exists()
