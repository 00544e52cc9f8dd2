import os
import secrets
import subprocess
import sys

from django.conf import settings

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "responder.example.org",
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
