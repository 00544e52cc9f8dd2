"""The Procfile's web process serves the seeded demo district, and stops cleanly."""

import fcntl
import io
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import termios
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

from accesslog.models import Event

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


def read_until(fd: int, wanted: bytes, seconds: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + seconds
    while wanted not in seen:
        assert time.monotonic() < deadline, f"never printed {wanted!r}:\n{seen.decode()}"
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the terminal closed: make ended
                break
            if not chunk:
                break
            seen += chunk
    return seen


def in_a_terminal(command: list[str], *, env: dict, cwd: Path) -> tuple[subprocess.Popen, int]:
    """Start command as a terminal's foreground job, where Ctrl-C is the keyboard's."""
    main, tty = os.openpty()

    def control_the_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdin=tty, stdout=tty, stderr=tty,
        start_new_session=True, preexec_fn=control_the_terminal,
    )  # fmt: skip
    os.close(tty)
    return process, main


def test_make_demo_sends_alarms_to_port_and_ctrl_c_stops_it_in_reverse_with_exit_0(
    settings, tmp_path
):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", stdout=io.StringIO())
    port = free_port()
    (tmp_path / "Makefile").write_text(
        f"demo:\n\t{sys.executable} -m responder.demo.run web worker doors\n"
    )
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DEMO_LOG_DIR": str(tmp_path / "logs"),
        "PYTHONPATH": str(ROOT),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    env.pop("REDIS_URL", None)  # as on a fresh machine: the embedded Redis, stopped last
    make, terminal = in_a_terminal(["make", "-s", "-C", str(tmp_path), "demo"], env=env, cwd=ROOT)
    try:
        shown = read_until(terminal, b"Ctrl-C stops everything", 120).decode()
        assert f"Sign in at http://127.0.0.1:{port}/" in shown
        assert "manage.py demo_codes" in shown
        assert re.search(r"officer\s+\d{6}\s+password", shown)
        assert "Traceback" not in shown  # the logs are in files, not on the screen

        deadline = time.monotonic() + 90
        while not Event.objects.exists():  # the door simulator reached this PORT's server
            assert time.monotonic() < deadline, (tmp_path / "logs" / "doors.log").read_text()
            time.sleep(0.5)

        os.write(terminal, b"\x03")  # Ctrl-C, as typed
        said = read_until(terminal, b"stopped redis", 90).decode()
        assert make.wait(timeout=30) == 0
    finally:
        if make.poll() is None:  # a failed assert: stop it the way a user would
            os.write(terminal, b"\x03")
            make.wait(timeout=90)
        os.close(terminal)

    stops = re.findall(r"stopped (\w+)", said)
    assert stops == ["doors", "worker", "web", "redis"]
    for log in (tmp_path / "logs").iterdir():
        assert "Traceback" not in log.read_text(), log.name
