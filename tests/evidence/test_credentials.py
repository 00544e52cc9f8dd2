"""C2PA Content Credentials in exported MP4s, read back with the same library (c2pa-python)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import av
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from responder.evidence.credentials import (
    CredentialsError,
    Provenance,
    content_credentials_embed,
    content_credentials_enabled,
    content_credentials_read,
    content_credentials_root,
)
from tests.recording.playback_helpers import _packets, clock_read

START = dt.datetime(2026, 3, 2, 8, 15, tzinfo=dt.UTC)
EXPORTED_AT = dt.datetime(2026, 3, 4, 9, 30, 5, tzinfo=dt.UTC)
MANIFEST_SHA256 = hashlib.sha256(b"manifest.json").hexdigest()
# How the evidence builder may mux: plain (moov after mdat), faststart, or fragmented.
MOVFLAGS = ["", "faststart", "frag_keyframe+empty_moov"]


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[str, bytes]:
    """Three seconds of real H.264 clock video muxed into each MP4 flavour."""
    folder = tmp_path_factory.mktemp("mp4")
    return {flags: _mp4_bytes(folder / f"{flags or 'plain'}.mp4", flags) for flags in MOVFLAGS}


def _mp4_bytes(path: Path, movflags: str) -> bytes:
    options = {"movflags": movflags} if movflags else {}
    with av.open(str(path), "w", format="mp4", options=options) as output:
        stream = output.add_stream("h264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for packet in _packets(START, seconds=3, fps=10, gop=10, codec="h264"):
            packet.stream = stream
            output.mux(packet)
    return path.read_bytes()


@pytest.fixture
def mp4(tmp_path, recordings) -> Path:
    path = tmp_path / "gym-east.mp4"
    path.write_bytes(recordings[""])
    return path


PROVENANCE = Provenance(
    export_id=117,
    exported_by="pat (Pat Lee)",
    exported_at=EXPORTED_AT.isoformat(),
    camera_id=7,
    camera="Gym east",
    manifest_core_sha256=MANIFEST_SHA256,
)


def _embed(mp4: Path, key: Ed25519PrivateKey) -> None:
    content_credentials_embed(mp4, provenance=PROVENANCE, key=key)


def _frames(mp4: Path) -> list[tuple[bytes, dt.datetime]]:
    with av.open(str(mp4)) as container:
        packets = [bytes(p) for p in container.demux(video=0) if p.size]
    with av.open(str(mp4)) as container:
        clocks = [clock_read(frame) for frame in container.decode(video=0)]
    return list(zip(packets, clocks, strict=True))


@pytest.mark.parametrize("movflags", MOVFLAGS, ids=["plain", "faststart", "fragmented"])
def test_a_reader_sees_who_exported_it_when_from_which_camera_and_the_manifest_hash(
    tmp_path, recordings, key, movflags
):
    mp4 = tmp_path / "camera.mp4"
    mp4.write_bytes(recordings[movflags])

    _embed(mp4, key)

    seen = content_credentials_read(mp4)
    assert seen["evidence"] == {
        "export_id": 117,
        "exported_by": "pat (Pat Lee)",
        "exported_at": "2026-03-04T09:30:05+00:00",
        "camera_id": 7,
        "camera": "Gym east",
        "manifest_core_sha256": MANIFEST_SHA256,
    }
    assert seen["actions"] == ["c2pa.created", "c2pa.repackaged"]
    assert seen["signer"]["alg"] == "Ed25519"
    # Intact and correctly signed, but no reader trusts the district's own root by default.
    assert seen["state"] == "Valid"
    assert seen["hard_binding_intact"]
    assert seen["failures"] == ["signingCredential.untrusted"]


@pytest.mark.parametrize("movflags", MOVFLAGS, ids=["plain", "faststart", "fragmented"])
def test_the_signed_mp4_still_plays_the_same_frames(tmp_path, recordings, key, movflags):
    mp4 = tmp_path / "camera.mp4"
    mp4.write_bytes(recordings[movflags])
    before = _frames(mp4)

    _embed(mp4, key)

    after = _frames(mp4)
    assert len(after) == len(before) == 30
    assert after == before
    assert after[0][1] == START


def test_a_reader_given_the_districts_root_trusts_the_credentials(mp4, key):
    _embed(mp4, key)

    seen = content_credentials_read(mp4, trust_anchors=content_credentials_root(key))

    assert seen["state"] == "Trusted"
    assert seen["failures"] == []
    # Development issues the same chain for the same key, so the root stays valid.
    assert content_credentials_root(key) == content_credentials_root(key)
    assert content_credentials_read(
        mp4, trust_anchors=content_credentials_root(Ed25519PrivateKey.generate())
    )["failures"] == ["signingCredential.untrusted"]


def test_a_changed_byte_in_the_video_is_reported_as_tampering(mp4, key):
    _embed(mp4, key)
    data = bytearray(mp4.read_bytes())
    data[data.index(b"mdat") + 1000] ^= 0x01
    mp4.write_bytes(bytes(data))

    seen = content_credentials_read(mp4, trust_anchors=content_credentials_root(key))

    assert seen["state"] == "Invalid"
    assert not seen["hard_binding_intact"]
    assert seen["failures"] == ["assertion.bmffHash.mismatch"]
    assert seen["evidence"]["camera"] == "Gym east"


def test_an_mp4_without_credentials_reads_as_absent(mp4):
    seen = content_credentials_read(mp4)

    assert seen["state"] == "Absent"
    assert seen["evidence"] == {}


def test_a_file_that_is_not_an_mp4_is_refused_and_left_as_it_was(tmp_path, key):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a movie" * 100)

    with pytest.raises(CredentialsError):
        _embed(junk, key)

    assert junk.read_bytes() == b"not a movie" * 100
    assert sorted(tmp_path.iterdir()) == [junk]


def test_production_signs_with_the_configured_chain_of_its_own_key_only(
    settings, tmp_path, mp4, key
):
    other = Ed25519PrivateKey.generate()
    settings.EVIDENCE_C2PA_CERT = _chain_file(tmp_path, other)
    with pytest.raises(CredentialsError, match="not a certificate for the signing key"):
        _embed(mp4, key)

    settings.EVIDENCE_C2PA_CERT = _chain_file(tmp_path, key)
    _embed(mp4, key)

    seen = content_credentials_read(mp4, trust_anchors=content_credentials_root(key))
    assert seen["state"] == "Trusted"
    assert seen["evidence"]["manifest_core_sha256"] == MANIFEST_SHA256


def _chain_file(folder: Path, key: Ed25519PrivateKey) -> str:
    """A certificate as a CA would issue it: here the development one, in a PEM file."""
    from responder.evidence.credentials import development_certificate

    path = folder / f"chain-{id(key)}.pem"
    path.write_text(development_certificate(key))
    return str(path)


def test_production_without_a_certificate_has_nothing_to_sign_with(settings, mp4, key):
    settings.EVIDENCE_C2PA_CERT, settings.EVIDENCE_C2PA_DEV_CERT = "", False

    assert not content_credentials_enabled()
    with pytest.raises(CredentialsError, match="Set EVIDENCE_C2PA_CERT"):
        _embed(mp4, key)
