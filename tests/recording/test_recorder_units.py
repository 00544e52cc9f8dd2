"""The recorder's parts on their own: which cameras, leases in real Redis, a killed writer's
file recovered."""

from __future__ import annotations

import hashlib
import queue
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest

from cameras.loopcam import clip_encode
from responder.core.redis import redis_client
from responder.recording import writer
from responder.recording.capture import Capture
from responder.recording.leases import Claim, Leases, fair_share
from responder.recording.models import Gap, RecordingPolicy, RecordingStop, Segment
from responder.recording.recorder import Recorder, recordable_cameras, segment_index
from tests.cameras.conftest import free_port
from tests.factories import CameraFactory


@pytest.fixture
def leases():
    client = redis_client()
    for key in client.scan_iter("recording:*"):
        client.delete(key)
    yield lambda name: Leases(client, name, ttl=2)
    for key in client.scan_iter("recording:*"):
        client.delete(key)


@pytest.mark.django_db
def test_it_records_what_the_policies_say_and_nothing_the_disk_guard_stopped():
    default = CameraFactory()
    events = CameraFactory()
    off = CameraFactory()
    disabled = CameraFactory(enabled=False)
    stopped = CameraFactory()
    RecordingPolicy.objects.create(camera=events, mode="events")
    RecordingPolicy.objects.create(camera=off, mode="off")
    RecordingStop.objects.create(camera=stopped, reason="only held footage left")

    found = {pk: kind for pk, (_, kind) in recordable_cameras().items()}

    assert found == {default.pk: "continuous", events.pk: "buffer"}
    assert disabled.pk not in found and stopped.pk not in found


@pytest.mark.django_db
def test_the_district_default_applies_to_cameras_without_a_policy():
    camera = CameraFactory()
    RecordingPolicy.objects.create(camera=None, mode="events")
    assert recordable_cameras()[camera.pk][1] == "buffer"
    RecordingPolicy.objects.filter(camera=None).update(mode="off")
    assert recordable_cameras() == {}


def test_a_lease_is_held_by_one_recorder_and_only_its_holder_renews_or_frees_it(leases):
    a, b = leases("a"), leases("b")
    assert a.claim(7) and not b.claim(7)
    assert b.renew([7]) == set() and a.renew([7]) == {7}
    b.release(7)
    assert a.holder(7) == "a"
    a.release(7)
    assert b.claim(7)


def test_a_claim_tells_a_lapsed_lease_from_one_given_back(leases):
    a, b, c = leases("a"), Leases(redis_client(), "b", ttl=0.2), leases("c")
    assert a.claim(9).lapsed_from == ""  # never held
    a.release(9)
    assert b.claim(9).lapsed_from == ""  # given back
    time.sleep(0.3)
    assert c.claim(9).lapsed_from == "b"  # b stopped renewing it


def test_a_lease_not_renewed_is_free_after_its_ttl(leases):
    a, b = leases("a"), leases("b")
    assert a.claim(8)
    time.sleep(2.2)
    assert b.claim(8) and a.renew([8]) == set()


def test_each_live_recorder_takes_its_fair_share(leases):
    a, b = leases("a"), leases("b")
    assert a.heartbeat() == 1
    assert b.heartbeat() == 2
    assert fair_share(5, 2) == 3 and fair_share(4, 2) == 2 and fair_share(0, 1) == 0
    b.leave()
    assert a.alive() == {"a"}


def test_a_file_left_by_a_killed_writer_is_cut_to_whole_packets_hashed_and_decodes(tmp_path):
    clip = clip_encode(codec="h264", width=320, height=240, fps=15, kbps=500, seconds=3)
    template = av.open(str(_clip_file(tmp_path, clip))).streams.video[0]
    segment = writer.segment_open(
        root=tmp_path, camera_id=1, recorder="r1", template=template, codec="h264",
        width=320, height=240, time_base=Fraction(1, 90000), first_pts=0, start_wall=1e9,
    )  # fmt: skip
    with av.open(str(_clip_file(tmp_path, clip))) as source:
        for packet in source.demux(video=0):
            if packet.dts is not None:
                segment.write(packet, packet.pts, packet.is_keyframe)
    segment.file.flush()
    partial = segment.file.path
    written = partial.read_bytes()
    # Killed mid-write: the file ends inside a TS packet, the muxer never closed.
    partial.write_bytes(written[: len(written) - 100])

    closed = writer.partial_salvage(partial, None)

    data = partial.read_bytes()
    assert closed.bytes == len(data) and len(data) % 188 == 0
    assert closed.sha256 == hashlib.sha256(data).hexdigest()
    assert closed.start.timestamp() == 1e9 and 2 < (closed.end - closed.start).total_seconds() < 4
    assert [k[0] for k in closed.keyframes] == [0, 1, 2]
    assert closed.keyframes == segment.keyframes  # the same offsets the live writer noted
    with av.open(str(partial)) as recovered:
        assert len(list(recovered.decode(video=0))) >= 40


@pytest.mark.django_db
def test_a_recorder_killed_between_segments_leaves_a_recorder_down_gap_from_its_last_one(
    leases, tmp_path
):
    camera = CameraFactory(main_stream_url=f"http://127.0.0.1:{free_port()}/gone/video.ts")
    last = segment_index(
        camera_id=camera.pk, closed=_segment_written(tmp_path, camera.pk, "a").close(),
        recorder="a", kind="continuous", root=tmp_path,
    )  # fmt: skip
    _lease_lapsed(camera.pk, "a")  # killed after indexing that, before its next file began
    taker = Recorder(name="b", root=tmp_path, lease_seconds=2)

    taker.take(camera, taker.leases.claim(camera.pk))
    taker.drop(camera.pk)

    gap = Gap.objects.get(camera=camera)
    assert gap.reason == "recorder_down" and gap.start == last.end
    assert "recorder a" in gap.detail


@pytest.mark.django_db
def test_a_recorder_killed_mid_segment_has_its_fresh_file_recovered_once_when_it_is_gone(
    leases, tmp_path
):
    camera = CameraFactory(main_stream_url=f"http://127.0.0.1:{free_port()}/gone/video.ts")
    killed = _segment_written(tmp_path, camera.pk, "a")
    killed.file.flush()  # what a killed writer leaves: the .partial, its sidecar, no row
    _lease_lapsed(camera.pk, "a")
    leases("a").heartbeat()  # its heartbeat outlives its lease a moment: "a" looks alive
    taker = Recorder(name="b", root=tmp_path, lease_seconds=10)
    taker.take(camera, taker.leases.claim(camera.pk))
    assert not Segment.objects.exists()  # a live writer's fresh file is left to it

    time.sleep(2.1)  # the heartbeat lapses too: "a" is dead
    taker.scan()
    taker.scan()
    taker.drop(camera.pk)

    recovered = Segment.objects.get(camera=camera)
    assert recovered.recorder == "a" and (tmp_path / recovered.path).exists()
    assert not list(tmp_path.glob("*/*/*.partial")) and not list(tmp_path.glob("*/*/*.json"))
    gap = Gap.objects.get(camera=camera)
    assert gap.reason == "recorder_down" and gap.start == recovered.end


def _segment_written(root: Path, camera_id: int, recorder: str) -> writer.SegmentWriter:
    clip = clip_encode(codec="h264", width=320, height=240, fps=15, kbps=500, seconds=2)
    template = av.open(str(_clip_file(root, clip))).streams.video[0]
    segment = writer.segment_open(
        root=root, camera_id=camera_id, recorder=recorder, template=template, codec="h264",
        width=320, height=240, time_base=Fraction(1, 90000), first_pts=0,
        start_wall=time.time() - 10,
    )  # fmt: skip
    with av.open(str(_clip_file(root, clip))) as source:
        for packet in source.demux(video=0):
            if packet.dts is not None:
                segment.write(packet, packet.pts, packet.is_keyframe)
    return segment


def _lease_lapsed(camera_id: int, holder: str) -> None:
    lease = Leases(redis_client(), holder, ttl=0.1)
    assert lease.claim(camera_id)
    time.sleep(0.2)


def _clip_file(tmp_path: Path, clip) -> Path:
    path = tmp_path / "clip.ts"
    if not path.exists():
        with av.open(str(path), "w", format="mpegts") as output:
            stream = output.add_stream("h264", rate=15)
            stream.width, stream.height = 320, 240
            for payload, pts, key in clip:
                packet = av.Packet(payload)
                packet.pts = packet.dts = pts
                packet.time_base, packet.stream, packet.is_keyframe = Fraction(1, 15), stream, key
                output.mux(packet)
    return path


class CountedSleeps(Capture):
    """A capture that records each pause between attempts instead of taking it, and stops
    after `attempts` of them."""

    def __init__(self, attempts: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.attempts, self.pauses = attempts, []

    def _sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        if len(self.pauses) == self.attempts:
            self.stop()


def test_a_camera_that_keeps_refusing_is_tried_again_after_1_2_4_8_16_then_every_30_s(tmp_path):
    events: queue.Queue = queue.Queue()
    capture = CountedSleeps(
        8, camera_id=1, url=f"http://127.0.0.1:{free_port()}/refused.ts", root=tmp_path,
        recorder="one", segment_seconds=4, timeout=1, events=events,
        lease=Claim(lapsed_from=""), fence=1,  # a lease held throughout
    )  # fmt: skip

    capture.run()

    assert capture.pauses == [1, 2, 4, 8, 16, 30, 30, 30]
    downs = [events.get_nowait() for _ in range(8)]
    assert [down.failures for down in downs] == list(range(1, 9))
    assert {down.reason for down in downs} == {"source_down"}
