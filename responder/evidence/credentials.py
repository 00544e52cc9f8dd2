"""C2PA Content Credentials in each exported MP4, so any open C2PA reader shows who
exported it, when, from which camera and under which manifest (docs/C2PA.md).

The claim is signed with the district's Ed25519 evidence key through a callback, so the
key never leaves `cryptography`. C2PA wants an X.509 chain for that key: production
supplies one (EVIDENCE_C2PA_CERT) or embeds nothing; development signs its own certificate
with the key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from pathlib import Path
from typing import IO, Any, Literal, TypedDict

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ASSERTION = "org.responder.evidence"
MIME = "video/mp4"
# The footage was captured by a camera and only repackaged (TS segments remuxed into one
# MP4, no re-encode): C2PA's words for that are a digital capture, then `repackaged`.
CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"
HARD_BINDING_OK = "assertion.bmffHash.match"
UNTRUSTED = "signingCredential.untrusted"  # a reader that does not know the issuer
# RFC 5280 4.1.2.5: "no well-defined expiration date", so development chains never lapse.
NEVER = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
SINCE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
SIGNING_ONLY = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)

State = Literal["Trusted", "Valid", "Invalid", "Absent"]
# A file, a zip member, or one of ours over one (builder.HashingWriter, verify.MemberReader).
Stream = IO[bytes] | io.IOBase


class Provenance(TypedDict):
    """What each MP4's credentials say (the `org.responder.evidence` assertion)."""

    export_id: int
    exported_by: str  # username and full name
    exported_at: str  # ISO 8601
    camera_id: int
    camera: str  # the camera's logical name
    manifest_core_sha256: str  # manifest.py: manifest_core_sha256


class Credentials(TypedDict):
    state: State
    hard_binding_intact: bool
    failures: list[str]
    evidence: dict[str, Any]
    signer: dict[str, str]
    actions: list[str]


def content_credentials_enabled() -> bool:
    return bool(settings.EVIDENCE_C2PA_CERT or settings.EVIDENCE_C2PA_DEV_CERT)


class CredentialsError(Exception):
    """The credentials could not be made: the library's or the certificate's reason."""


def content_credentials_sign(
    source: Stream,
    target: Stream,
    *,
    title: str,
    provenance: Provenance,
    key: Ed25519PrivateKey,
) -> None:
    """Writes `source` (a seekable MP4) to `target` with credentials embedded. c2pa-rs
    writes the signed file front to back, then only asks where it is (builder.py)."""
    try:
        chain = _chain_pem(key)
        with (
            c2pa.Builder(_manifest(title, provenance)) as builder,
            c2pa.Signer.from_callback(
                key.sign, c2pa.C2paSigningAlg.ED25519, chain, _tsa_url()
            ) as signer,
        ):
            builder.sign(signer, MIME, source, target)
    except (c2pa.C2paError, ImproperlyConfigured, ValueError) as error:
        raise CredentialsError(str(error) or type(error).__name__) from error


def content_credentials_embed(
    mp4: Path, *, provenance: Provenance, key: Ed25519PrivateKey
) -> None:
    """Sign `mp4` in place: the signed copy is written beside it, then renamed over it."""
    signed = mp4.with_name(f".{mp4.name}.c2pa")
    try:
        with mp4.open("rb") as source, signed.open("w+b") as target:
            content_credentials_sign(
                source, target, title=mp4.name, provenance=provenance, key=key
            )
        signed.replace(mp4)
    finally:
        signed.unlink(missing_ok=True)


def content_credentials_read(mp4: Path | Stream, *, trust_anchors: str = "") -> Credentials:
    """What a C2PA reader sees in `mp4` (a path or a seekable stream). Without
    `trust_anchors` (PEM roots) no signer is trusted, so an intact file reads as "Valid";
    with the district's root, "Trusted"."""
    if isinstance(mp4, Path):
        with mp4.open("rb") as stream:
            return content_credentials_read(stream, trust_anchors=trust_anchors)
    context = c2pa.Context.from_dict(
        {"trust": {"trust_anchors": trust_anchors}} if trust_anchors else {}
    )
    try:
        reader = c2pa.Reader.try_create(MIME, mp4, None, context)
        if reader is None:
            return _absent()
        with reader:
            return _credentials(reader)
    except c2pa.C2paError as error:  # e.g. a credentials box too damaged to parse
        raise CredentialsError(str(error) or type(error).__name__) from error


def content_credentials_root(key: Ed25519PrivateKey) -> str:
    """The PEM certificate a verifier adds as trust anchor: the chain's last one (in
    development, the one self-signed certificate)."""
    return (
        x509.load_pem_x509_certificates(_chain_pem(key).encode())[-1]
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def _manifest(title: str, provenance: Provenance) -> dict[str, Any]:
    return {
        "claim_generator_info": [{"name": "Responder"}],
        "title": title,
        "format": MIME,
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {"action": "c2pa.created", "digitalSourceType": CAPTURE},
                        {"action": "c2pa.repackaged", "when": provenance["exported_at"]},
                    ]
                },
            },
            {"label": ASSERTION, "data": dict(provenance)},
        ],
    }


def _credentials(reader: c2pa.Reader) -> Credentials:
    manifest = reader.get_active_manifest() or {}
    results = (reader.get_validation_results() or {}).get("activeManifest", {})
    assertions = {item["label"]: item["data"] for item in manifest.get("assertions", [])}
    signature = manifest.get("signature_info", {})
    return Credentials(
        state=reader.get_validation_state() or "Invalid",
        hard_binding_intact=HARD_BINDING_OK in _codes(results, "success")
        and not any(code.endswith("Hash.mismatch") for code in _codes(results, "failure")),
        failures=_codes(results, "failure"),
        evidence=assertions.get(ASSERTION, {}),
        signer={
            name: str(signature[name])
            for name in ("alg", "issuer", "common_name")
            if name in signature
        },
        actions=[
            item["action"] for item in assertions.get("c2pa.actions.v2", {}).get("actions", [])
        ],
    )


def _codes(results: dict[str, Any], kind: str) -> list[str]:
    return [item["code"] for item in results.get(kind, [])]


def _absent() -> Credentials:
    return Credentials(
        state="Absent", hard_binding_intact=False, failures=[], evidence={}, signer={}, actions=[]
    )


def _tsa_url() -> str | None:
    return settings.EVIDENCE_C2PA_TSA_URL or None


def _chain_pem(key: Ed25519PrivateKey) -> str:
    if settings.EVIDENCE_C2PA_CERT:
        return _configured_chain(settings.EVIDENCE_C2PA_CERT, key)
    if settings.EVIDENCE_C2PA_DEV_CERT:
        return development_certificate(key)
    # Production without a certificate embeds nothing (settings.py says why).
    raise ImproperlyConfigured("Set EVIDENCE_C2PA_CERT to embed Content Credentials.")


def _configured_chain(configured: str, key: Ed25519PrivateKey) -> str:
    text = configured if configured.lstrip().startswith("-----") else Path(configured).read_text()
    leaf = x509.load_pem_x509_certificates(text.encode())[0]
    if leaf.public_key() != key.public_key():
        raise ImproperlyConfigured("EVIDENCE_C2PA_CERT is not a certificate for the signing key.")
    return text


def development_certificate(key: Ed25519PrivateKey) -> str:
    """A self-signed certificate for the evidence key with a fixed serial and dates, so the
    same key always gives the same PEM (Ed25519 signatures are deterministic)."""
    public = key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Responder (development)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Evidence signing"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(int.from_bytes(hashlib.sha256(raw).digest()[:16]) >> 1)
        .not_valid_before(SINCE)
        .not_valid_after(NEVER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(SIGNING_ONLY, critical=True)
        # C2PA's certificate profile: one of a few extended key usages, and c2pa-rs refuses
        # a signing certificate without an authority key identifier, self-signed or not.
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, None)
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()
