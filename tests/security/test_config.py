"""Attacks on how the server is configured and what it shows without a sign-in.

A deployment that forgets DEBUG must not run on the development key published in this
repository: anyone could forge video links with it. The API's schema and its explorer are
for users signed in with both factors, and load nothing from other sites. The audit log records who
really connected, not whatever address a client claims in a header.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core import signing
from django.test import Client

from cameras.tokens import PLAYLIST, SALTS, session_hash
from responder.core.models import AuditEntry
from responder.embedded_redis import free_port
from responder.evidence.signing import private_pem_new
from responder.settings import DEV_SECRET_KEY
from tests.factories import PASSWORD, CameraFactory, GrantFactory, UserFactory
from tests.servers import ROOT, HttpClient, database_url, http_sign_in, serve, stop
from tests.signin_helpers import LOGIN, code_for, usable_device

REAL_KEY = secrets.token_urlsafe(50)  # a production key: random, made for this run
EVIDENCE_KEY = private_pem_new().decode()  # production refuses to start without one


def clean_env(**extra: str) -> dict[str, str]:
    """An environment as a fresh machine has it: no DEBUG, no SECRET_KEY."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **extra}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_process_without_debug_or_secret_key_refuses_to_start():
    result = run_manage("check", env=clean_env())

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_the_development_key_as_a_fallback():
    env = clean_env(SECRET_KEY=REAL_KEY, SECRET_KEY_FALLBACKS=DEV_SECRET_KEY)

    result = run_manage("check", env=env)

    assert result.returncode != 0
    assert "SECRET_KEY_FALLBACKS" in result.stderr


def test_without_debug_no_key_derives_from_the_development_key():
    # Camera credentials and webhook secrets are encrypted with keys derived from these.
    script = (
        "from django.conf import settings; from responder.settings import DEV_SECRET_KEY; "
        "from cameras.models import Camera; "
        "keys = Camera._meta.get_field('password').keys; "
        "print(settings.DEBUG, DEV_SECRET_KEY in [settings.SECRET_KEY, "
        "*settings.SECRET_KEY_FALLBACKS], len(keys))"
    )
    env = clean_env(
        SECRET_KEY=REAL_KEY,
        ALLOWED_HOSTS="responder.example.org",
        EVIDENCE_SIGNING_KEY=EVIDENCE_KEY,
    )

    result = run_manage("shell", "--verbosity", "0", "-c", script, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "1"]


def forged_token(camera_id: int, user_id: int) -> str:
    """A playlist token in today's shape, signed with the published development key."""
    payload = [user_id, camera_id, "low", 0, session_hash("forged"), int(time.time()) + 300]
    return signing.dumps(payload, key=DEV_SECRET_KEY, salt=SALTS[PLAYLIST], compress=False)


def start_daphne(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int | None]:
    """daphne as production starts it; the port once it listens, None if it exited."""
    port = free_port()
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(
        [*command, "responder.asgi:application"], cwd=ROOT, env=env, stderr=log.open("w")
    )
    for _ in range(300):
        if process.poll() is not None:
            return process, None
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    raise AssertionError("daphne neither listened nor exited")


@pytest.fixture
def production_env(redis_server) -> dict[str, str]:
    return clean_env(
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SETTINGS_MODULE="responder.settings",
        EVIDENCE_SIGNING_KEY=EVIDENCE_KEY,
    )


@pytest.fixture
def watched_camera() -> Iterator[tuple[int, int]]:
    camera = CameraFactory()
    user = UserFactory()
    GrantFactory(user=user, building=camera.building, capabilities=["live"])
    yield camera.pk, user.pk


def playlist_answer(port: int, camera_id: int, token: str) -> tuple[int, str]:
    path = f"/api/v1/cameras/{camera_id}/live/low/index.m3u8?token={token}"
    # nginx terminates TLS in production and says so; without it every answer is a redirect.
    status, _, body = HttpClient(port).request("GET", path, headers={"X-Forwarded-Proto": "https"})
    return status, body.decode()


def assert_refuses_forged_token(process: subprocess.Popen, port: int | None, ids, log: Path):
    camera_id, user_id = ids
    try:
        if port is None:  # it refused to start: nothing can honour the forged link
            assert process.returncode != 0
            assert "SECRET_KEY" in log.read_text()
            return
        status, body = playlist_answer(port, camera_id, forged_token(camera_id, user_id))
        assert (status, body) == (403, "This video link is not valid.")
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_deployment_that_forgot_debug_and_the_key_never_honours_a_forged_link(
    production_env, watched_camera, tmp_path
):
    log = tmp_path / "daphne.log"
    process, port = start_daphne(production_env, log)

    assert_refuses_forged_token(process, port, watched_camera, log)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_production_server_refuses_a_link_forged_with_the_development_key(
    production_env, watched_camera, tmp_path
):
    log = tmp_path / "daphne.log"
    process, port = start_daphne({**production_env, "SECRET_KEY": REAL_KEY}, log)

    assert port is not None, log.read_text()
    assert_refuses_forged_token(process, port, watched_camera, log)


def unverified_cookie(user) -> str:
    """The session of a user past the password but not the second factor."""
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_api_schema_and_its_explorer_refuse_anonymous_and_unverified_sessions(daphne):
    user = UserFactory(is_staff=True, is_superuser=True)
    anonymous = HttpClient(daphne)
    half_signed_in = {"Cookie": unverified_cookie(user)}

    for path in ("/api/v1/schema/", "/api/v1/docs/"):
        status, _, body = anonymous.request("GET", path)
        assert status in (401, 403) and b"paths" not in body, path
        status, _, body = anonymous.request("GET", path, headers=half_signed_in)
        assert status in (401, 403) and b"paths" not in body, path


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_api_explorer_loads_nothing_from_another_host(daphne):
    client = http_sign_in(daphne, UserFactory())

    status, _, page = client.request("GET", "/api/v1/docs/")
    schema_status, _, schema = client.request("GET", "/api/v1/schema/")

    assert status == 200 and schema_status == 200 and b"/api/v1/events/" in schema
    sources = re.findall(rb'(?:src|href)="([^"]*)"', page)
    assert sources and all(url.startswith(b"/") and not url.startswith(b"//") for url in sources)
    assert not re.search(rb"https?://|//cdn", page)
    for url in sources:
        assert client.request("GET", url.decode())[0] == 200, url


def gunicorn_with(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "responder.wsgi:application",
    ]
    return serve(command, port, log, env), port


def sign_in_through(port: int, user, forwarded_for: str) -> None:
    credentials = {
        "username": user.get_username(),
        "password": PASSWORD,
        "otp": code_for(usable_device(user)),
    }
    headers = {"X-Forwarded-For": forwarded_for}
    status, _, body = HttpClient(port).request("POST", LOGIN, credentials, headers)
    assert status == 200, body


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("trusted", "recorded"), [("", "127.0.0.1"), ("127.0.0.1", "203.0.113.9")]
)
def test_an_audit_row_records_the_real_peer_unless_a_trusted_proxy_forwarded_it(
    redis_server, tmp_path, trusted, recorded
):
    user = UserFactory()
    process, port = gunicorn_with({"TRUSTED_PROXIES": trusted}, tmp_path / "gunicorn.log")
    try:
        sign_in_through(port, user, forwarded_for="203.0.113.9")
    finally:
        stop(process)

    assert AuditEntry.objects.get(action="signin", user=user).ip == recorded
