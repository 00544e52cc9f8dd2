"""The district's Ed25519 key: what signs every manifest, and the public keys that verify.

EVIDENCE_SIGNING_KEY is a PEM file's path or the PEM text. In development (DEBUG) a key is
generated on first use under EVIDENCE_DEV_KEY_DIR; production settings refuse to start
without one. A key's id is the first 16 hex digits of the SHA-256 of its raw public key,
as `openssl pkey -pubin -outform DER | tail -c 32 | sha256sum` computes it.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEV_KEY_NAME = "evidence-signing-key.pem"


def _pem(value: str) -> bytes:
    if "-----BEGIN" in value:
        return value.encode()
    return Path(value).read_bytes()


def signing_key() -> Ed25519PrivateKey:
    configured, dev_dir = settings.EVIDENCE_SIGNING_KEY, settings.EVIDENCE_DEV_KEY_DIR
    return _signing_key(configured, str(dev_dir) if settings.EVIDENCE_DEV_KEY else "")


@cache
def _signing_key(configured: str, dev_dir: str) -> Ed25519PrivateKey:
    if configured:
        key = serialization.load_pem_private_key(_pem(configured), password=None)
    elif dev_dir:
        key = _dev_key(Path(dev_dir) / DEV_KEY_NAME)
    else:
        raise ImproperlyConfigured("Set EVIDENCE_SIGNING_KEY.")
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("EVIDENCE_SIGNING_KEY must be an Ed25519 private key.")
    return key


def private_pem_new() -> bytes:
    """A new Ed25519 private key as PEM (PKCS#8), as EVIDENCE_SIGNING_KEY takes it."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _dev_key(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = private_pem_new()
        # Created exclusively: two workers starting at once keep the first one's key.
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
        except FileExistsError:
            pass
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_load(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def trusted_keys() -> dict[str, Ed25519PublicKey]:
    """The district's current public key and those rotated out, by key id."""
    keys = [signing_key().public_key()]
    keys += [public_key_load(_pem(item)) for item in settings.EVIDENCE_OLD_PUBLIC_KEYS]
    return {key_id(key): key for key in keys}


def signature_valid(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
