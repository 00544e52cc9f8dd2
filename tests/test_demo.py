"""The Procfile's web process serves the seeded demo district, and stops cleanly."""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        process, _, command = line.partition(":")
        if process.strip() == name:
            return command.strip()
    raise LookupError(name)


def database_url() -> str:
    # The test database pytest-django made, which the seed below commits to.
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, cookie: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until_served(url: str, web: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert web.poll() is None, "the web process exited"
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("the web process never answered")


def officer_session_cookie() -> str:
    # Signed in past the second factor, as POST /api/v1/auth/login leaves the session.
    officer = get_user_model().objects.get(username="officer")
    client = Client()
    client.force_login(officer)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=officer).persistent_id
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


@pytest.fixture
def web(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", stdout=io.StringIO())
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    command = f"exec {procfile_command('web')}"
    web = subprocess.Popen(
        ["sh", "-c", command], cwd=ROOT, env=env, start_new_session=True,
        stdout=(tmp_path / "web.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until_served(f"http://127.0.0.1:{port}/api/v1/schema/", web)
        yield web, f"http://127.0.0.1:{port}"
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()


def test_the_web_process_serves_the_demo_district_and_stops_cleanly(web):
    process, base = web
    assert get(f"{base}/api/v1/schema/")[0] == 403  # the API's map is for verified users
    assert get(f"{base}/api/v1/schema/", officer_session_cookie())[0] == 200
    assert get(f"{base}/api/v1/campuses/")[0] in (401, 403)

    status, body = get(f"{base}/api/v1/campuses/", officer_session_cookie())
    assert status == 200
    campuses = json.loads(body)
    assert len(campuses) == 3
    assert sum(len(b["floors"]) for c in campuses for b in c["buildings"]) > 3

    process.send_signal(signal.SIGTERM)  # what honcho sends on Ctrl-C
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing of its process group is left
