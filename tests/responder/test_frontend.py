"""The PWA's root files, served by Django from frontend/dist."""

import pytest
from django.test import Client

from responder import frontend


@pytest.fixture
def dist(tmp_path, monkeypatch):
    (tmp_path / "index.html").write_text(
        '<!doctype html><meta name="responder-session-idle" content="__SESSION_IDLE__">'
    )
    (tmp_path / "sw.js").write_text("self.addEventListener('fetch', () => {});")
    (tmp_path / "manifest.webmanifest").write_text('{"name": "Responder"}')
    monkeypatch.setattr(frontend, "DIST", tmp_path)
    return tmp_path


def test_the_shell_is_served_at_the_root_and_always_revalidated(dist):
    response = Client().get("/")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert b"<!doctype html>" in response.content


def test_the_shell_tells_the_app_the_session_idle_limit(dist, settings):
    settings.SESSION_COOKIE_AGE = 900

    response = Client().get("/")

    assert b'name="responder-session-idle" content="900"' in response.content


def test_a_notification_link_gets_the_same_shell(dist):
    assert Client().get("/?event=42").content == Client().get("/").content


def test_an_unchanged_shell_costs_a_304(dist):
    etag = Client().get("/")["ETag"]

    response = Client().get("/", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304


def test_the_service_worker_may_control_the_whole_site(dist):
    response = Client().get("/sw.js")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    assert response["Cache-Control"] == "no-cache"


def test_the_manifest_has_its_own_media_type(dist):
    response = Client().get("/manifest.webmanifest")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"


def test_an_unbuilt_app_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setattr(frontend, "DIST", tmp_path / "missing")

    response = Client().get("/")

    assert response.status_code == 503
    assert b"make frontend" in response.content


def test_the_shell_refuses_writes(dist):
    assert Client().post("/").status_code == 405
