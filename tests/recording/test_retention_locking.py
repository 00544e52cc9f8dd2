"""A hold placed while a deletion runs waits for it: the deleter never misses a new hold."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from responder.recording.models import Hold
from responder.recording.services import _HOLDS_LOCK, hold_create, holds_lock
from tests.factories import CameraFactory

pytestmark = pytest.mark.django_db(transaction=True)


def waiting_for_the_holds_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND objid = %s",
            [_HOLDS_LOCK],
        )
        return cursor.fetchone()[0] > 0


def test_placing_a_hold_waits_for_a_deletion_in_progress():
    if connection.vendor != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    camera = CameraFactory()
    now = timezone.now()
    deleting, placed, release = threading.Event(), threading.Event(), threading.Event()

    def deleter() -> None:
        with transaction.atomic():
            holds_lock(shared=False)
            deleting.set()
            release.wait(20)
        connections.close_all()

    def holder() -> None:
        deleting.wait(10)
        hold_create(cameras=[camera], start=now - timedelta(hours=1), end=now, reason="x", by=None)
        placed.set()
        connections.close_all()

    threads = [threading.Thread(target=deleter), threading.Thread(target=holder)]
    for thread in threads:
        thread.start()
    deleting.wait(10)
    for _ in range(400):
        if waiting_for_the_holds_lock() or placed.is_set():
            break
        time.sleep(0.05)
    # The hold waits on the deleter's lock rather than committing beside it.
    waited = waiting_for_the_holds_lock() and not placed.is_set()
    release.set()
    for thread in threads:
        thread.join(20)
    assert waited
    assert placed.is_set() and Hold.objects.count() == 1
