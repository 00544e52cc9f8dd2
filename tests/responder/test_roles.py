import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from responder.core.models import AuditEntry, Grant
from responder.core.roles import (
    DISTRICT_IT,
    DISTRICT_OFFICE,
    FACILITIES,
    FIRE,
    POLICE,
    roles_ensure,
)
from tests.factories import CampusFactory, GrantFactory

pytestmark = pytest.mark.django_db


def standing(name: str) -> list[tuple[list[str], list[str]]]:
    grants = Grant.objects.filter(group__name=name, incident__isnull=True, ends_at__isnull=True)
    return sorted((sorted(g.capabilities), sorted(t.slug for t in g.tags.all())) for g in grants)


def test_it_creates_every_role_with_its_default_grants():
    call_command("ensure_roles", stdout=io.StringIO())
    assert standing(DISTRICT_OFFICE) == [
        (["alarms", "export", "incidents", "live", "recorded"], [])
    ]
    assert standing(FACILITIES) == [(["live"], ["exterior", "parking"])]
    assert standing(POLICE) == [(["alarms", "live"], [])]
    assert standing(FIRE) == [(["alarms"], [])]
    assert "manage" in standing(DISTRICT_IT)[0][0]
    assert standing("School administrators") == []
    assert (
        not Grant.objects.filter(group__isnull=False).exclude(campus=None, building=None).exists()
    )


def test_a_second_run_writes_nothing():
    roles_ensure()
    grants, audit = list(Grant.objects.values()), AuditEntry.objects.count()
    roles_ensure()
    roles_ensure(reset=True)
    assert list(Grant.objects.values()) == grants
    assert AuditEntry.objects.count() == audit


def test_it_keeps_what_it_changed_unless_told_to_reset():
    roles_ensure()
    police = Group.objects.get(name=POLICE)
    police.grants.update(capabilities=["alarms"])
    extra = GrantFactory(group=police, campus=CampusFactory(), capabilities=["recorded"])
    roles_ensure()
    assert standing(POLICE) == [(["alarms"], []), (["recorded"], [])]
    roles_ensure(reset=True)
    assert standing(POLICE) == [(["alarms", "live"], [])]
    assert not Grant.objects.filter(pk=extra.pk).exists()


def test_a_reset_leaves_time_boxed_grants_alone():
    roles_ensure()
    fire = Group.objects.get(name=FIRE)
    temporary = GrantFactory(group=fire, capabilities=["live"], note="drill")
    Grant.objects.filter(pk=temporary.pk).update(ends_at="2030-01-01T00:00:00Z")
    roles_ensure(reset=True)
    assert Grant.objects.filter(pk=temporary.pk).exists()
