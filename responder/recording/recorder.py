"""The recorder process (`manage.py record`): claims cameras by lease, records, indexes.

The main thread owns the database and claims and gives back leases; each camera has a
Capture thread that only reads the source and writes files (see capture.py), and a Keeper
thread renews the leases held (leases.py). Every `scan` seconds the main thread reads which
cameras are to be recorded, gives back what is over its fair share and claims what is free;
between scans it indexes what the captures report and stops those whose lease was lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, transaction

from cameras import health, media
from cameras.models import Camera, StreamKind
from responder.core.redis import redis_client
from responder.recording import writer as segments
from responder.recording.capture import BACKOFF_MAX, Capture, Closed, Down, Up
from responder.recording.leases import Claim, Keeper, Leases, fair_share
from responder.recording.models import (
    Gap,
    GapReason,
    RecordingMode,
    RecordingPolicy,
    Segment,
    SegmentKind,
)

log = logging.getLogger("responder.recording")

RECOVER_AFTER_SECONDS = 5  # a .partial untouched this long has no live writer
RECOVER_DAYS = 2  # date folders looked at for leftovers when a camera is taken
# A capture stops writing this long (at most a tenth of a lease) before its lease could
# lapse unrenewed: room for a packet being muxed when the deadline passes and for Redis's
# clock and ours to differ.
FENCE_SECONDS = 1.0
# Python's GIL: a thread waiting for it wakes every switch interval (5 ms by default) to ask
# for it. With 150 capture threads waiting that was most of the recorder's CPU (futex waits
# and context switches: RECORDING.md, "Where the CPU goes"). The captures let go of the GIL
# at every packet read anyway, so nobody waits long for it with a longer interval.
GIL_SWITCH_SECONDS = 0.05


def recorder_name(name: str | None = None) -> str:
    raw = name or f"{socket.gethostname()}-{os.getpid()}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw)[:60]


def recordable_cameras() -> dict[int, tuple[Camera, str]]:
    """Cameras to record now, with their segments' kind: enabled, mode not off, not stopped
    by the disk guard. A camera without a policy follows the district default."""
    default = RecordingPolicy.objects.filter(camera__isnull=True).first() or RecordingPolicy()
    cameras = Camera.objects.enabled().filter(recording_stop__isnull=True)
    found: dict[int, tuple[Camera, str]] = {}
    for camera in cameras.select_related("recording_policy"):
        policy = getattr(camera, "recording_policy", None) or default
        if policy.mode == RecordingMode.OFF:
            continue
        kind = (
            SegmentKind.BUFFER if policy.mode == RecordingMode.EVENTS else SegmentKind.CONTINUOUS
        )
        found[camera.pk] = (camera, kind)
    return found


def segment_index(
    *, camera_id: int, closed: segments.ClosedSegment, recorder: str, kind: str, root: Path
) -> Segment:
    """Rename the finished file and insert its row; the sidecar goes last (see writer.py)."""
    final = closed.final
    relative = str(final.relative_to(root))
    if closed.partial != final:
        closed.partial.replace(final)
    segment = Segment.objects.filter(path=relative).first()
    if segment is None:
        segment = Segment.objects.create(
            camera_id=camera_id,
            path=relative,
            start=closed.start,
            end=max(closed.end, closed.start),
            bytes=closed.bytes,
            sha256=closed.sha256,
            codec=closed.codec,
            width=closed.width,
            height=closed.height,
            keyframes=closed.keyframes,
            kind=kind,
            recorder=recorder,
        )
    segments.sidecar(final).unlink(missing_ok=True)
    return segment


def gap_open(*, camera_id: int, start: dt.datetime, reason: str, detail: str = "") -> Gap | None:
    """An open gap from `start`, unless the camera already has one (the first cause stays)."""
    with transaction.atomic():
        if Gap.objects.filter(camera_id=camera_id, end__isnull=True).exists():
            return None
        return Gap.objects.create(
            camera_id=camera_id, start=start, reason=reason, detail=detail[:300]
        )


def gaps_close(*, camera_id: int, end: dt.datetime) -> None:
    for gap in Gap.objects.filter(camera_id=camera_id, end__isnull=True):
        gap.end = max(end, gap.start)
        gap.save(update_fields=["end"])


def gap_after_recovered(*, gap_id: int, end: dt.datetime) -> None:
    """A segment recovered after the takeover's gap was opened: the gap starts at its end."""
    gap = Gap.objects.filter(pk=gap_id).first()
    if gap is not None:
        gap.start = end if gap.end is None else min(end, gap.end)
        gap.save(update_fields=["start"])


@dataclass
class Leftovers:
    found: list[Segment] = field(default_factory=list)
    # Writers still alive whose file was written to within RECOVER_AFTER_SECONDS: each
    # either indexes it itself when it notices its lease is gone, or dies and its file is
    # recovered at a later scan.
    waiting: set[str] = field(default_factory=set)


def leftovers_recover(
    *, camera_id: int, root: Path, alive: set[str], kind: str, writers: set[str] | None = None
) -> Leftovers:
    """Index what a killed recorder left of this camera (of `writers` only, if given): each
    is then followed by a gap (reason recorder_down) up to whatever records the camera next."""
    leftovers = Leftovers()
    folders = sorted((root / str(camera_id)).glob("*-*-*"))[-RECOVER_DAYS:]
    for meta in sorted(p for folder in folders for p in folder.glob("*.json")):
        final = meta.with_name(meta.name.removesuffix(".json"))
        partial = final.with_name(final.name + segments.PARTIAL)
        writer_name = final.name.split("-", 1)[-1].removesuffix(".ts")
        if writers is not None and writer_name not in writers:
            continue
        path = partial if partial.exists() else final
        recent = path.exists() and time.time() - path.stat().st_mtime < RECOVER_AFTER_SECONDS
        if writer_name in alive and recent:
            leftovers.waiting.add(writer_name)
            continue
        if not path.exists():
            meta.unlink(missing_ok=True)
            continue
        closed = segments.partial_salvage(path, None)
        if closed is None:
            meta.unlink(missing_ok=True)
            continue
        segment = segment_index(
            camera_id=camera_id, closed=closed, recorder=writer_name, kind=kind, root=root
        )
        leftovers.found.append(segment)
        log.info("camera %s: recovered %s (%s B)", camera_id, final.name, closed.bytes)
    return leftovers


class Recorder:
    def __init__(
        self,
        *,
        name: str,
        root: Path,
        segment_seconds: float = 60,
        lease_seconds: float = 15,
        scan_seconds: float = 5,
        timeout: float | None = None,
        backoff_max_seconds: float = BACKOFF_MAX,
    ) -> None:
        self.name, self.root = name, root
        self.segment_seconds, self.scan_seconds = segment_seconds, scan_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.lease_seconds = lease_seconds
        self.timeout = timeout or settings.CAMERA_TIMEOUT
        self.leases = Leases(redis_client(), name, ttl=lease_seconds)
        # Three renewals per lease: two may fail (a Redis failover) before a camera stops.
        self.keeper = Keeper(self.leases, every=lease_seconds / 3)
        self.fence = min(FENCE_SECONDS, lease_seconds / 10)
        self.events: queue.Queue = queue.Queue()
        self.captures: dict[int, Capture] = {}
        self.kinds: dict[int, str] = {}
        self.offline: set[int] = set()  # cameras this recorder marked offline
        # Cameras whose earlier writers' files were too fresh to recover at takeover: those
        # writers, and the recorder_down gap the files' end will start.
        self.waiting: dict[int, tuple[set[str], int | None]] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        log.info("recorder %s: recording into %s", self.name, self.root)
        next_scan = 0.0
        self.keeper.start()
        try:
            while not self.stop.is_set():
                if time.monotonic() >= next_scan:
                    self._safely(self.scan)
                    next_scan = time.monotonic() + self.scan_seconds
                self._drain(timeout=max(0.05, min(0.5, next_scan - time.monotonic())))
                self.reap()
        finally:
            for capture in self.captures.values():
                capture.stop()  # all at once: each may wait up to CAMERA_TIMEOUT on its source
            for camera_id in list(self.captures):
                self._safely(lambda c=camera_id: self.release(c, GapReason.STOPPED, "shut down"))
            self.keeper.stop()
            self._safely(self.leases.leave)

    def scan(self) -> None:
        self.reap()
        recorders = self.leases.heartbeat()
        wanted = recordable_cameras()
        self.kinds = {camera_id: kind for camera_id, (_, kind) in wanted.items()}
        for camera_id in [c for c in self.captures if c not in wanted]:
            stopped = Camera.objects.filter(pk=camera_id, recording_stop__isnull=False).exists()
            if stopped:
                self.release(camera_id, GapReason.DISK_FULL, "stopped by the disk guard")
            else:
                self.release(camera_id, None, "")  # off or disabled: a policy, not a gap
        share = fair_share(len(wanted), recorders)
        excess = list(self.captures)[share:]
        for camera_id in excess:
            self.captures[camera_id].stop()
        for camera_id in excess:
            self.release(camera_id, GapReason.STOPPED, "handed to another recorder")
        free = [c for c in wanted if c not in self.captures]
        random.shuffle(free)  # recorders starting together do not race for the same ones
        for camera_id in free:
            if len(self.captures) >= share:
                break
            if claim := self.leases.claim(camera_id):
                self.take(wanted[camera_id][0], claim)
        for camera_id in list(self.waiting):
            self.leftovers_retry(camera_id)

    def reap(self) -> None:
        """Drop the cameras whose lease was lost or could not be renewed in time: their
        captures have already stopped writing (fenced, see capture.py)."""
        for camera_id, capture in list(self.captures.items()):
            # `stopping` too: a capture that fenced itself stays stopped even if a late
            # renewal then held (Redis slow, not gone); dropped, it is claimed anew.
            if capture.stopping or not capture.lease.held(self.fence):
                lost = capture.lease.until == 0
                log.warning(
                    "camera %s: lease %s; stopping",
                    camera_id,
                    "lost" if lost else "not renewed in time",
                )
                self.drop(camera_id)

    def take(self, camera: Camera, claim: Claim) -> None:
        self.keeper.keep(camera.pk, claim)  # renewed while its leftovers are recovered
        try:
            self._start(camera, claim)
        except Exception:
            self.keeper.forget(camera.pk)  # not recorded here: let the lease lapse
            raise

    def _start(self, camera: Camera, claim: Claim) -> None:
        kind = self.kinds.get(camera.pk, SegmentKind.CONTINUOUS)
        leftovers = leftovers_recover(
            camera_id=camera.pk, root=self.root, alive=self.leases.alive() - {self.name}, kind=kind
        )
        gap = None
        if leftovers.found or claim.lapsed_from:
            # Whether or not its writer left a file to recover (killed between segments, or
            # its file still too fresh to touch): from the camera's last footage on, nothing
            # recorded it. No footage at all: its lease was renewed at most a lease ago.
            last = Segment.objects.filter(camera=camera).order_by("-end").first()
            fallback = segments._utc(time.time() - self.lease_seconds)
            writer = last.recorder if leftovers.found and last else claim.lapsed_from
            gap = gap_open(
                camera_id=camera.pk,
                start=last.end if last else fallback,
                reason=GapReason.RECORDER_DOWN,
                detail=f"recorder {writer} stopped without giving the camera back",
            )
        if leftovers.waiting:
            self.waiting[camera.pk] = (leftovers.waiting, gap.pk if gap else None)
        url = media.url_with_credentials(camera.main_stream_url, camera.username, camera.password)
        capture = Capture(
            camera_id=camera.pk,
            url=url,
            root=self.root,
            recorder=self.name,
            segment_seconds=self.segment_seconds,
            timeout=self.timeout,
            events=self.events,
            lease=claim,
            fence=self.fence,
            backoff_max=self.backoff_max_seconds,
        )
        self.captures[camera.pk] = capture
        capture.start()
        log.info("camera %s: recording", camera.pk)

    def leftovers_retry(self, camera_id: int) -> None:
        """Recover the files this camera's earlier writers were still writing at takeover."""
        writers, gap_id = self.waiting.pop(camera_id)
        if camera_id not in self.captures:
            return  # given up since: whoever takes it next recovers them
        leftovers = leftovers_recover(
            camera_id=camera_id,
            root=self.root,
            alive=self.leases.alive() - {self.name},
            kind=self.kinds.get(camera_id, SegmentKind.CONTINUOUS),
            writers=writers,
        )
        if leftovers.waiting:
            self.waiting[camera_id] = (leftovers.waiting, gap_id)
        if leftovers.found and gap_id is not None:
            end = max(segment.end for segment in leftovers.found)
            gap_after_recovered(gap_id=gap_id, end=end)

    def drop(self, camera_id: int) -> Capture | None:
        """Stop recording a camera now and index what it wrote; only then is it out of
        `captures` (what a reader of `captures` sees gone is indexed)."""
        capture = self.captures.get(camera_id)
        self.keeper.forget(camera_id)
        if capture is None:
            return None
        capture.stop()
        capture.join(timeout=self.timeout + 5)
        self._drain(timeout=0)
        del self.captures[camera_id]
        return capture

    def release(self, camera_id: int, reason: str | None, detail: str) -> None:
        capture = self.drop(camera_id)
        if capture is not None and reason is not None:
            start = capture.last_end or segments._utc(time.time())
            gap_open(camera_id=camera_id, start=start, reason=reason, detail=detail)
        self.leases.release(camera_id)

    def _drain(self, *, timeout: float) -> None:
        try:
            event = self.events.get(timeout=timeout) if timeout else self.events.get_nowait()
        except queue.Empty:
            return
        while True:
            self._safely(lambda e=event: self.handle(e))
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def handle(self, event: Closed | Up | Down) -> None:
        if isinstance(event, Closed):
            kind = self.kinds.get(event.camera_id, SegmentKind.CONTINUOUS)
            segment_index(
                camera_id=event.camera_id,
                closed=event.segment,
                recorder=self.name,
                kind=kind,
                root=self.root,
            )
        elif isinstance(event, Up):
            gaps_close(camera_id=event.camera_id, end=event.at)
            camera = Camera.objects.filter(pk=event.camera_id).first()
            # Only what this recorder marked offline: the probes' figures are better than
            # what a recorder that skips stream analysis knows (fps, bitrate).
            if camera is not None and event.camera_id in self.offline:
                health.camera_health_record(camera=camera, stream=StreamKind.MAIN, info=event.info)
                self.offline.discard(event.camera_id)
        elif isinstance(event, Down):
            gap_open(
                camera_id=event.camera_id,
                start=event.at,
                reason=event.reason,
                detail=event.message,
            )
            camera = Camera.objects.filter(pk=event.camera_id).first()
            camera_fault = event.reason != GapReason.DISK_FULL
            if camera is not None and camera_fault and event.failures >= 2:  # still down
                health.camera_health_record(
                    camera=camera, stream=StreamKind.MAIN, reason=event.message
                )
                self.offline.add(event.camera_id)

    def _safely(self, work) -> None:
        for attempt in range(3):
            try:
                work()
                return
            except Exception:
                log.exception("recorder %s: failed (attempt %s)", self.name, attempt + 1)
                close_old_connections()
                time.sleep(0.5 * (attempt + 1))
