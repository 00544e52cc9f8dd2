import csv
import io

import pytest
from django.urls import reverse

from responder.core.audit import audit_record, client_ip
from responder.core.models import AuditEntry, Grant
from tests.factories import CampusFactory, GroupFactory, TOTPDeviceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def it_admin_client(client):
    user = UserFactory(username="it", is_staff=True, is_superuser=True)
    device = TOTPDeviceFactory(user=user)
    client.force_login(user)
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    return client


def test_an_audit_entry_cannot_be_changed_or_deleted():
    entry = audit_record(action="video.live", username="officer")

    entry.action = "nothing.happened"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(pk=entry.pk).update(action="nothing.happened")
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "video.live"


def test_the_admin_offers_no_way_to_edit_the_log(it_admin_client):
    entry = audit_record(action="video.live", username="officer")
    change_url = reverse("admin:responder_auditentry_change", args=[entry.pk])

    response = it_admin_client.post(change_url, {"action": "nothing.happened"})
    assert response.status_code == 403
    delete_url = reverse("admin:responder_auditentry_delete", args=[entry.pk])
    assert it_admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert it_admin_client.get(reverse("admin:responder_auditentry_add")).status_code == 403
    assert AuditEntry.objects.get(pk=entry.pk).action == "video.live"


def test_the_filtered_log_exports_as_csv(it_admin_client):
    audit_record(action="video.live", username="officer")
    audit_record(action="signin.failed", username="mallory")

    url = reverse("admin:audit_export") + "?action__exact=video.live"
    response = it_admin_client.get(url)

    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(row["username"], row["action"]) for row in rows] == [("officer", "video.live")]
    assert rows[0]["at"].endswith("+00:00") and "." in rows[0]["at"]
    assert rows[0]["hash"] == AuditEntry.objects.get(pk=rows[0]["id"]).hash != ""


def test_granting_access_writes_an_audit_row():
    group = GroupFactory(name="Police responders")
    campus = CampusFactory(name="High School")

    grant = Grant.objects.create(group=group, campus=campus, capabilities=["live"])
    grant.capabilities = ["live", "recorded"]
    grant.save()
    grant.delete()

    rows = AuditEntry.objects.filter(object_type="responder.Grant").order_by("id")
    assert [row.action for row in rows] == ["grant.created", "grant.changed", "grant.deleted"]
    assert rows[1].details["capabilities"] == ["live", "recorded"]
    assert rows[1].details["scope"] == "High School"


def test_joining_a_group_writes_an_audit_row():
    user = UserFactory(username="officer")
    group = GroupFactory(name="Police responders")

    user.groups.add(group)

    row = AuditEntry.objects.get(action="membership.added")
    assert row.object_repr == "officer" and row.details["ids"] == [group.pk]


def test_a_change_in_the_admin_is_audited_with_who_made_it(it_admin_client):
    url = reverse("admin:auth_group_add")
    response = it_admin_client.post(
        url,
        {
            "name": "Fire responders",
            "grants-TOTAL_FORMS": "0",
            "grants-INITIAL_FORMS": "0",
            "grants-MIN_NUM_FORMS": "0",
            "grants-MAX_NUM_FORMS": "1000",
            "responder_role-TOTAL_FORMS": "0",
            "responder_role-INITIAL_FORMS": "0",
            "responder_role-MIN_NUM_FORMS": "0",
            "responder_role-MAX_NUM_FORMS": "1",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    row = AuditEntry.objects.get(action="admin.added")
    assert row.username == "it"
    assert row.details["object_repr"] == "Fire responders"


def request_from(peer: str, forwarded: str = ""):
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = RequestFactory().get("/", REMOTE_ADDR=peer, headers=headers)
    request.user = AnonymousUser()
    return request


def test_client_ip_ignores_forwarded_for_from_a_peer_that_is_not_a_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(request_from("198.51.100.7", "203.0.113.9")) == "198.51.100.7"


def test_client_ip_reads_forwarded_for_back_to_the_first_untrusted_hop(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "127.0.0.1"]
    spoofed_then_real = "6.6.6.6, 203.0.113.9, 10.1.2.3"

    assert client_ip(request_from("127.0.0.1", spoofed_then_real)) == "203.0.113.9"
    assert client_ip(request_from("127.0.0.1", "10.1.2.3")) == "10.1.2.3"
    assert client_ip(request_from("127.0.0.1")) == "127.0.0.1"


def test_client_ip_stops_at_a_hop_that_is_no_address(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    assert client_ip(request_from("127.0.0.1", "203.0.113.9, not-an-ip")) == "127.0.0.1"


def test_an_audit_row_keeps_the_client_a_trusted_proxy_names(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    row = audit_record(action="video.live", request=request_from("127.0.0.1", "203.0.113.9"))
    assert AuditEntry.objects.get(pk=row.pk).ip == "203.0.113.9"
