"""The audit log is a hash chain: an edited, deleted or truncated row is found."""

import importlib
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader

from responder.core.audit import audit_record, audit_verify
from responder.core.chain import GENESIS, chain_hash, entry_content
from responder.core.models import AuditChainHead, AuditEntry
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def sql(statement: str, *params) -> None:
    # The ORM refuses to change the log on purpose: tampering goes around it.
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def rows(count: int) -> list[AuditEntry]:
    user = UserFactory(username="officer")
    return [
        audit_record(action="video.recorded", user=user, details={"n": n, "camera": 7})
        for n in range(count)
    ]


def test_each_row_stores_the_previous_hash_and_its_own():
    first, second = rows(2)

    assert second.prev_hash == first.hash
    assert first.hash == chain_hash(first.prev_hash, entry_content(first))
    stored = AuditEntry.objects.get(pk=second.pk)
    assert (stored.prev_hash, stored.hash) == (second.prev_hash, second.hash)
    assert AuditChainHead.objects.get().hash == second.hash


def test_the_hash_covers_canonical_json_of_the_row():
    entry = audit_record(action="signin", username="ana", details={"b": 1, "a": [2]})

    content = entry_content(AuditEntry.objects.get(pk=entry.pk))

    assert '"details":{"a":[2],"b":1}' in content and " " not in content
    assert f'"at":"{entry.at.isoformat()}"' in content and entry.at.isoformat().endswith("+00:00")


def test_appending_costs_one_query_beside_the_insert(django_assert_num_queries):
    rows(1)  # the head exists
    with django_assert_num_queries(2):
        audit_record(action="video.recorded", username="officer")


def test_an_intact_chain_verifies(capsys):
    rows(3)

    call_command("audit_verify")

    assert audit_verify() is None
    assert "holds: 3 rows" in capsys.readouterr().out


def test_an_edited_row_and_a_deleted_row_are_both_found():
    entries = rows(6)
    edited, deleted, after_deleted = entries[1], entries[3], entries[4]
    sql("UPDATE responder_auditentry SET username = 'nobody' WHERE id = %s", edited.pk)
    sql("DELETE FROM responder_auditentry WHERE id = %s", deleted.pk)

    with pytest.raises(CommandError, match=f"breaks at row {edited.pk} .*content was changed"):
        call_command("audit_verify")
    sql("UPDATE responder_auditentry SET username = 'officer' WHERE id = %s", edited.pk)
    with pytest.raises(CommandError, match=f"breaks at row {after_deleted.pk} .*before it"):
        call_command("audit_verify")


def test_a_row_whose_hash_was_recomputed_breaks_the_next_link():
    entries = rows(3)
    forged = entries[1]
    content = entry_content(forged).replace('"n":1', '"n":9')
    sql(
        'UPDATE responder_auditentry SET details = \'{"n": 9, "camera": 7}\', hash = %s '
        "WHERE id = %s",
        chain_hash(forged.prev_hash, content),
        forged.pk,
    )

    assert audit_verify().id == entries[2].pk


def test_deleting_the_last_rows_is_found_by_the_head():
    entries = rows(3)
    sql("DELETE FROM responder_auditentry WHERE id = %s", entries[2].pk)

    broken = audit_verify()

    assert (broken.id, broken.action) == (entries[1].pk, "video.recorded")
    assert "deleted" in broken.problem


def test_the_migration_chains_the_rows_written_before_it():
    entries = rows(3)
    sql("UPDATE responder_auditentry SET prev_hash = '', hash = ''")
    sql("DELETE FROM responder_auditchainhead")
    migration = importlib.import_module("responder.core.migrations.0006_audit_chain")
    state = MigrationLoader(connection).project_state(("responder", "0006_audit_chain"))

    migration.chain_existing_rows(state.apps, None)

    assert AuditEntry.objects.order_by("id").first().prev_hash == GENESIS
    assert AuditEntry.objects.get(pk=entries[2].pk).hash == AuditChainHead.objects.get().hash
    assert audit_verify() is None


def test_a_missing_head_starts_again_from_the_last_row():
    # A flushed test database has none; neither has one whose head row was removed.
    first = rows(1)[0]
    sql("DELETE FROM responder_auditchainhead")

    second = audit_record(action="video.live", username="officer")

    assert second.prev_hash == first.hash
    assert audit_verify() is None


def test_a_rolled_back_append_leaves_the_chain_as_it_was():
    rows(1)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(action="video.recorded", username="officer")
        raise RuntimeError

    audit_record(action="video.live", username="officer")

    assert audit_verify() is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_chain_to_the_same_row():
    threads, each = 6, 15
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            start.wait()
            for i in range(each):
                # Inside a longer transaction too, as services append: the head stays
                # locked until commit.
                with transaction.atomic():
                    audit_record(action="video.recorded", username=f"w{n}", details={"i": i})
                    AuditEntry.objects.filter(username=f"w{n}").count()
        except BaseException as error:  # noqa: BLE001  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert not errors
    prevs = list(AuditEntry.objects.values_list("prev_hash", flat=True))
    assert len(prevs) == threads * each == len(set(prevs))
    assert audit_verify() is None
