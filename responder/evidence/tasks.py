"""Evidence tasks: build one export (ids in, one service call), and beat's sweep of builds
whose worker died."""

from __future__ import annotations

from celery import Task, shared_task

from responder.evidence import builder


# acks_late: a worker lost mid-build leaves the message queued for another; export_build
# claims an export once, so a second delivery does nothing.
@shared_task(
    bind=True, acks_late=True, ignore_result=True, name="responder.tasks.evidence_export_build"
)
def export_build(self: Task, export_id: int) -> str | None:
    return builder.export_build(export_id=export_id, task_id=self.request.id or "")


@shared_task(acks_late=True, ignore_result=True, name="responder.tasks.evidence_stale_sweep")
def evidence_stale_sweep() -> list[int]:
    return builder.exports_stale_fail()
