"""Evidence: an export against `cp` + `sha256sum` of the same bytes, evidence_verify against
`sha256sum -c`, a share link's creation, a hold over 150 cameras x 24 h.

    createdb -h 127.0.0.1 -U postgres bench_evidence
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_evidence REDIS_URL=redis://... \\
      .venv/bin/python -m bench.evidence [--cameras 4] [--minutes 10] [--trials 2]

Recordings: 20 s of testsrc2 1080p30 H.264 at ~4 Mbps (1 s GOP) encoded once by PyAV into
one MPEG-TS file, copied as every 20 s segment of every camera and indexed as the recorder
indexes them (a real 1080p stream's bytes; encoding 40 min of 1080p would take longer than
the measures). Each trial, in the same run and alternately: (a) `cp` of the segment files to
a folder, then `sha256sum` of the copies; (b) the export's build, as the worker runs it
(responder/evidence/builder.py: copy + hash into the zip, one MP4 per camera with C2PA
Content Credentials, manifest, signatures). Then `sha256sum -c SHA256SUMS` over the unzipped export against
`zip_verify` (what `manage.py evidence_verify` runs) over the zip, and the command itself.
DATABASE_URL is migrated and emptied; REDIS_URL or an embedded Redis. Imports tests.*
(dev dependencies).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from fractions import Fraction
from pathlib import Path

import av
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from bench.common import bench_services, calibration
from responder.evidence.credentials import development_certificate

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
FPS, SEGMENT_SECONDS = 30, 20


def clip_1080p(path: Path) -> None:
    """SEGMENT_SECONDS of 1080p30 H.264 at ~4 Mbps in one MPEG-TS file."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 1920, 1080, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, FPS), FPS
    encoder.options = {"preset": "ultrafast", "g": str(FPS), "sc_threshold": "0", "bf": "0",
                       "b": "4000000", "maxrate": "4500000", "bufsize": "4500000"}  # fmt: skip
    source = av.open(
        f"testsrc2=size=1920x1080:rate={FPS}:duration={SEGMENT_SECONDS}", format="lavfi"
    )
    with source, av.open(str(path), "w", format="mpegts") as output:
        stream = output.add_stream("h264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        for index, frame in enumerate(source.decode(video=0)):
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            for packet in encoder.encode(frame):
                packet.stream = stream
                output.mux(packet)
        for packet in encoder.encode(None):
            packet.stream = stream
            output.mux(packet)


def recordings(cameras: list, start: dt.datetime, minutes: float, clip: Path) -> list[Path]:
    from django.conf import settings

    from responder.recording.models import Segment

    data = clip.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    files, rows = [], []
    for camera in cameras:
        for index in range(round(minutes * 60 / SEGMENT_SECONDS)):
            begins = start + dt.timedelta(seconds=index * SEGMENT_SECONDS)
            relative = f"{camera.pk}/{begins:%Y-%m-%d}/{begins:%H%M%S}-bench.ts"
            path = Path(settings.RECORDINGS_ROOT) / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(clip, path)
            files.append(path)
            rows.append(Segment(
                camera=camera, path=relative, start=begins,
                end=begins + dt.timedelta(seconds=SEGMENT_SECONDS), bytes=len(data),
                sha256=digest, codec="h264", width=1920, height=1080, recorder="bench",
            ))  # fmt: skip
    Segment.objects.bulk_create(rows)
    return files


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def cp_then_sha256sum(root: Path, target: Path) -> None:
    """The recordings' tree copied, then every copy hashed: what the export does to them."""
    subprocess.run(["cp", "-r", str(root), str(target)], check=True)
    copies = sorted(str(path) for path in target.rglob("*.ts"))
    subprocess.run(["sha256sum", *copies], check=True, stdout=subprocess.DEVNULL)


def export_new(user, cameras, start: dt.datetime, end: dt.datetime):
    """An export row and its hold, as export_create leaves them (without queueing)."""
    from responder.evidence.models import Export
    from responder.recording.models import HoldSource
    from responder.recording.services import hold_create

    export = Export.objects.create(start=start, end=end, reason="bench", created_by=user)
    export.cameras.set(cameras)
    export.hold = hold_create(cameras=cameras, start=start, end=end, reason="bench", by=user,
                              source=HoldSource.EXPORT)  # fmt: skip
    export.save(update_fields=["hold"])
    return export


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--trials", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-evidence-"))
    print(f"calibration: sha256 of 64 MiB in {calibration():.0f} ms")
    print(
        f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    private = ed25519.Ed25519PrivateKey.generate()
    key = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Production settings embed C2PA credentials only with a certificate: a self-signed one.
    with bench_services(
        work, RECORDINGS_ROOT=str(work / "recordings"), EVIDENCE_ROOT=str(work / "evidence"),
        EVIDENCE_SIGNING_KEY=key.decode(), EVIDENCE_C2PA_CERT=development_certificate(private),
    ):  # fmt: skip
        try:
            run(args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.test import override_settings

    from responder.evidence import builder, services
    from responder.evidence.verify import zip_verify
    from responder.recording.services import hold_create
    from tests.factories import CameraFactory, UserFactory

    for command in (["migrate"], ["flush"]):
        subprocess.run([PY, "manage.py", *command, "--noinput", "-v0"], cwd=ROOT, check=True)
    clip = work / "clip.ts"
    print(f"encoded {SEGMENT_SECONDS} s of 1080p30 in {timed(lambda: clip_1080p(clip)):.0f} s")
    user = UserFactory(is_superuser=True)
    cameras = [CameraFactory() for _ in range(args.cameras)]
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(microsecond=0)
    end = start + dt.timedelta(minutes=args.minutes)
    files = recordings(cameras, start, args.minutes, clip)
    size = sum(path.stat().st_size for path in files)
    print(f"{args.cameras} cameras x {args.minutes:g} min: {len(files)} segments, "
          f"{size / 1e6:.0f} MB ({size * 8 / (args.minutes * 60 * args.cameras) / 1e6:.1f} Mbps)")  # fmt: skip

    reference, export_times, bare_times, exports = [], [], [], []
    for trial in range(args.trials):
        copies = work / f"copies-{trial}"
        reference.append(
            timed(lambda copies=copies: cp_then_sha256sum(Path(settings.RECORDINGS_ROOT), copies))
        )
        shutil.rmtree(copies)
        export = export_new(user, cameras, start, end)
        export_times.append(timed(lambda e=export: builder.export_build(export_id=e.pk)))
        export.refresh_from_db()
        assert export.status == "ready", export.failure
        exports.append(export)
        # The same export without C2PA credentials (production without a certificate):
        # what the credentials cost, under the same load.
        with override_settings(EVIDENCE_C2PA_CERT="", EVIDENCE_C2PA_DEV_CERT=False):
            bare = export_new(user, cameras, start, end)
            bare_times.append(timed(lambda e=bare: builder.export_build(export_id=e.pk)))
        bare.refresh_from_db()
        (Path(settings.EVIDENCE_ROOT) / bare.path).unlink()
    ratio = statistics.median(export_times) / statistics.median(reference)
    bare_ratio = statistics.median(bare_times) / statistics.median(reference)
    zip_file = Path(settings.EVIDENCE_ROOT) / exports[-1].path
    with zipfile.ZipFile(zip_file) as archive:
        assert json.loads(archive.read("manifest.json"))["content_credentials"], "no C2PA"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"zip: {zip_file.stat().st_size / 1e6:.0f} MB, C2PA in every MP4; peak RSS {peak:.0f} MB"
    )
    print(f"cp + sha256sum: {fmt(reference)}")
    print(f"export build:   {fmt(export_times)}  ratio {ratio:.2f} (target <= 2)")
    print(f"  without C2PA: {fmt(bare_times)}  ratio {bare_ratio:.2f}")

    unzipped = work / "unzipped"
    with zipfile.ZipFile(zip_file) as archive:
        archive.extractall(unzipped)
    check, verify, command = [], [], []
    for _ in range(args.trials):
        check.append(timed(lambda: subprocess.run(
            ["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=unzipped, check=True)))  # fmt: skip
        verify.append(timed(lambda: zip_verify(zip_file)))
        command.append(timed(lambda: subprocess.run(
            [PY, "manage.py", "evidence_verify", str(zip_file)], cwd=ROOT, check=True,
            stdout=subprocess.DEVNULL)))  # fmt: skip
    assert not zip_verify(zip_file).problems
    print(f"sha256sum -c:           {fmt(check)}")
    print(f"zip_verify:             {fmt(verify)}  ratio "
          f"{statistics.median(verify) / statistics.median(check):.2f} (target <= 1.2)")  # fmt: skip
    print(f"manage.py evidence_verify (with Django's start): {fmt(command)}  ratio "
          f"{statistics.median(command) / statistics.median(check):.2f}")  # fmt: skip

    shares = [timed(lambda: services.share_create(export=exports[-1], user=user, note="bench"))
              for _ in range(20)]  # fmt: skip
    print(f"share create:           {fmt(shares, ms=True)} (target <= 100 ms)")
    many = [CameraFactory() for _ in range(150)]
    now = dt.datetime.now(dt.UTC)
    holds = [timed(lambda: hold_create(cameras=many, start=now - dt.timedelta(hours=24), end=now,
                                       reason="bench", by=user)) for _ in range(5)]  # fmt: skip
    print(f"hold 150 cameras x 24 h: {fmt(holds, ms=True)} (target <= 1 s)")


def fmt(values: list[float], *, ms: bool = False) -> str:
    scale, unit = (1000, "ms") if ms else (1, "s")
    shown = ", ".join(f"{v * scale:.{0 if ms else 2}f}" for v in values)
    return f"median {statistics.median(values) * scale:.{1 if ms else 2}f} {unit} ({shown})"


if __name__ == "__main__":
    main()
