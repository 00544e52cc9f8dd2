import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

from responder.evidence.signing import private_pem_new

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "responder.example.org",
    "EVIDENCE_SIGNING_KEY": private_pem_new().decode(),
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stderr


def test_production_refuses_the_default_secret_key():
    env = {**PRODUCTION, "SECRET_KEY": ""}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_a_short_secret_key():
    result = run_manage("check", env={**PRODUCTION, "SECRET_KEY": "short-but-not-default"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_the_evidence_signing_key():
    result = run_manage("check", env={**PRODUCTION, "EVIDENCE_SIGNING_KEY": ""})
    assert result.returncode != 0
    assert "EVIDENCE_SIGNING_KEY" in result.stderr


def test_a_bad_boolean_fails_loudly():
    result = run_manage("check", env={"DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr


def test_a_trusted_proxy_that_is_no_address_fails_loudly():
    result = run_manage("check", env={"TRUSTED_PROXIES": "127.0.0.1,nginx.local"})
    assert result.returncode != 0
    assert "TRUSTED_PROXIES: 'nginx.local' is no address or network" in result.stderr


def test_the_webhook_secret_overlap_is_read_in_hours():
    result = run_manage(
        "shell", "--verbosity", "0", "-c",
        "from django.conf import settings; print(settings.WEBHOOK_SECRET_OVERLAP)",
        env={"WEBHOOK_SECRET_OVERLAP_HOURS": "2"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2:00:00"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("LIVE_START_TIMEOUT", "0", "LIVE_START_TIMEOUT must be a whole number of at least 1"),
        ("PUSH_WINDOW_SECONDS", "-5", "PUSH_WINDOW_SECONDS must be a whole number of at least 1"),
        ("RECORDINGS_MIN_FREE_PERCENT", "101", "from 0 to 100, not '101'"),
        ("DB_CONN_MAX_AGE", "-1", "DB_CONN_MAX_AGE must be a whole number of at least 0"),
    ],
)
def test_a_number_that_makes_no_sense_stops_the_start_with_its_name(name, value, says):
    result = run_manage("check", env={**PRODUCTION, name: value})

    assert result.returncode != 0
    assert says in result.stderr
