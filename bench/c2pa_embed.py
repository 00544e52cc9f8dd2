"""C2PA Content Credentials on an exported MP4: embed (sign) and read (validate) times.

    .venv/bin/python -m bench.c2pa_embed [--trials 5] [--seconds 60]

The MP4 is 1080p30 H.264 at ~4 Mbps, muxed as PyAV muxes by default (moov at the end)
or with --movflags,
from 10 s encoded once and repeated: real packets, ~30 MB per minute. The reference in
the same run: `cp` of the file followed by SHA-256 of the copy, the least an embed that
rewrites and hashes the file can cost. No database or Redis is needed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av

from bench.common import calibration, h264_1080p

ROOT = Path(__file__).resolve().parents[1]
FPS = 30
ENCODED_SECONDS = 10


def mp4_1080p(path: Path, seconds: int, movflags: str) -> None:
    packets = h264_1080p(ENCODED_SECONDS, FPS)
    options = {"movflags": movflags} if movflags else {}
    with av.open(str(path), "w", format="mp4", options=options) as output:
        stream = output.add_stream("h264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        for repeat in range(seconds // ENCODED_SECONDS):
            for packet in packets:
                copy = av.Packet(bytes(packet))
                copy.pts = copy.dts = packet.pts + repeat * ENCODED_SECONDS * FPS
                copy.time_base, copy.is_keyframe, copy.stream = (
                    packet.time_base,
                    packet.is_keyframe,
                    stream,
                )
                output.mux(copy)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--movflags", default="", help="e.g. faststart")
    args = parser.parse_args()
    os.environ.update(DJANGO_SETTINGS_MODULE="responder.settings", DEBUG="true")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from responder.evidence.credentials import (
        Provenance,
        content_credentials_embed,
        content_credentials_read,
    )

    print(f"calibration: sha256 of 64 MiB in {calibration():.0f} ms")
    work = Path(tempfile.mkdtemp(prefix="bench-c2pa-"))
    original = work / "original.mp4"
    mp4_1080p(original, args.seconds, args.movflags)
    size = original.stat().st_size
    print(
        f"{args.seconds} s of 1080p30: {size / 1e6:.1f} MB ({size * 8 / args.seconds / 1e6:.1f} Mbps)"
    )
    key = Ed25519PrivateKey.generate()
    provenance = Provenance(
        export_id=1, exported_by="bench", exported_at=dt.datetime.now(dt.UTC).isoformat(),
        camera_id=1, camera="bench", manifest_core_sha256="0" * 64,
    )  # fmt: skip
    embeds, reads, references = [], [], []
    for _ in range(args.trials):
        copy = work / "camera.mp4"
        started = time.perf_counter()
        shutil.copyfile(original, copy)
        hashlib.file_digest(copy.open("rb"), "sha256")
        references.append(time.perf_counter() - started)
        started = time.perf_counter()
        content_credentials_embed(copy, provenance=provenance, key=key)
        embeds.append(time.perf_counter() - started)
        started = time.perf_counter()
        seen = content_credentials_read(copy)
        reads.append(time.perf_counter() - started)
        assert seen["hard_binding_intact"], seen
    shutil.rmtree(work)
    for name, times in (("cp + sha256", references), ("embed", embeds), ("read", reads)):
        print(f"{name:12} median {statistics.median(times) * 1000:6.0f} ms  (of {len(times)})")


if __name__ == "__main__":
    main()
