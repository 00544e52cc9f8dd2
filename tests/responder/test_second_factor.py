"""The second factor on every route, found by walking the URL resolver: routes added
later are covered without touching this file."""

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from responder.core.permissions import IsVerified
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

# Routes a session without a second factor may reach, and why. A new route that needs
# no session must be added here on purpose, or this test fails.
OPEN_API_ROUTES = {
    "api/v1/auth/login": "where the second factor is given",
    "api/v1/auth/logout": "any session may end itself",
    "api/v1/push/vapid-key": "a public key by nature",
    "api/v1/access/<slug:slug>/events": "the access system's webhook, signed with its secret",
    "api/v1/cameras/<int:camera_id>/live/<str:profile>/index.m3u8": (
        "a signed URL, minted only for a verified session"
    ),
    "api/v1/cameras/<int:camera_id>/live/<str:profile>/<str:name>": (
        "a signed URL, minted only for a verified session"
    ),
    "api/v1/cameras/<int:camera_id>/recorded/<str:name>/index.m3u8": (
        "a signed URL, minted only for a verified session"
    ),
    "api/v1/cameras/<int:camera_id>/recorded/<str:name>/rec<int:segment_id>.ts": (
        "a signed URL, minted only for a verified session"
    ),
    "api/v1/cameras/<int:camera_id>/recorded/<str:name>/<str:file>": (
        "a signed URL, minted only for a verified session"
    ),
    "api/v1/evidence/<int:export_id>/download": (
        "a signed URL, minted only for a verified session"
    ),
}
# The PWA's files at the root: the same public shell for everyone; all data is behind the API.
OPEN_SHELL_ROUTES = {
    "": "the public app shell (index.html); all data is behind the API",
    "sw.js": "the public service worker; all data is behind the API",
    "manifest.webmanifest": "the public web app manifest; all data is behind the API",
}
# Evidence shared with police: capability URLs, the token (256 bits, stored hashed, expiring,
# revocable, rate-limited) is the permission; no account (tests/evidence/test_shares.py).
OPEN_SHARE_ROUTES = {
    "evidence/s/<str:token>/": "a share link's page, minted by a verified session",
    "evidence/s/<str:token>/<path:name>": "a share link's files, minted by a verified session",
}
OPEN_ADMIN_ROUTES = {
    "admin/login/": "where the second factor is given",
    "admin/logout/": "any session may end itself (a GET only goes back to the index)",
}


def routes(prefix: str) -> list[str]:
    def walk(patterns: list, base: str):
        for pattern in patterns:
            route = base + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield route

    return sorted({r for r in walk(get_resolver().url_patterns, "") if r.startswith(prefix)})


def concrete(route: str) -> str:
    """A URL for the route: 1 for every argument, the first choice of an alternation."""
    path = re.sub(
        r"\(\?P<\w+>([^()]*)\)",
        lambda m: m.group(1).split("|")[0] if "|" in m.group(1) else "1",
        route,
    )
    path = re.sub(r"<(?:\w+:)?\w+>", "1", path)
    return "/" + path.replace("^", "").replace("$", "")


API_ROUTES = [r for r in routes("api/v1/") if r not in OPEN_API_ROUTES]
ADMIN_ROUTES = [r for r in routes("admin/") if r not in OPEN_ADMIN_ROUTES]


def password_only(user) -> Client:
    """Signed in with the password alone: what a stolen password gives."""
    client = Client()
    client.force_login(user)
    return client


def test_the_walk_finds_the_routes_of_every_app():
    assert {"api/v1/auth/me", "api/v1/campuses/", "api/v1/events/"} <= set(API_ROUTES)
    assert any(r.startswith("api/v1/^cameras/") for r in API_ROUTES)
    assert "admin/" in ADMIN_ROUTES


def test_the_open_routes_still_exist():
    assert set(OPEN_API_ROUTES) <= set(routes("api/v1/"))


def test_every_route_outside_the_api_and_the_admin_is_a_listed_open_one():
    # media/: floor plans, refused (404) to a session without the second factor; see
    # tests/security/test_floor_plans.py.
    others = {r for r in routes("") if not r.startswith(("api/v1/", "admin/", "media/"))}

    assert others == set(OPEN_SHELL_ROUTES) | set(OPEN_SHARE_ROUTES)


@pytest.mark.parametrize("route", API_ROUTES)
def test_every_api_route_refuses_a_session_without_the_second_factor(route):
    client = password_only(UserFactory(is_superuser=True, is_staff=True))
    url = concrete(route)

    for method in (client.get, client.post, client.delete):
        response = method(url)
        assert response.status_code == 403, (route, method.__name__, response.status_code)
        assert response.json()["detail"] == IsVerified.message


@pytest.mark.parametrize("route", API_ROUTES)
def test_every_api_route_lets_a_verified_session_past_the_second_factor(
    route, verified_api_client
):
    client = verified_api_client(UserFactory(is_superuser=True, is_staff=True))

    response = client.get(concrete(route))

    refused = response.status_code == 403 and response.json().get("detail") == IsVerified.message
    assert not refused, route


def test_the_admin_index_sends_a_staff_session_without_the_second_factor_to_sign_in():
    client = password_only(UserFactory(is_superuser=True, is_staff=True))

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response.url == "/admin/login/?next=/admin/"


def test_every_admin_route_sends_a_session_without_the_second_factor_to_sign_in():
    client = password_only(UserFactory(is_superuser=True, is_staff=True))

    for route in ADMIN_ROUTES:
        response = client.get(concrete(route))
        assert response.status_code == 302, route
        assert response.url.startswith("/admin/login/"), route


def test_every_admin_route_lets_a_verified_staff_session_in(verified_api_client):
    client = verified_api_client(UserFactory(is_superuser=True, is_staff=True))

    for route in ADMIN_ROUTES:
        response = client.get(concrete(route))
        # An error raises here (the client re-raises it), so no 500 passes. A missing
        # object #1 is a 302 to the index or a 404; 403 is a read-only model's add or delete.
        assert response.status_code in (200, 302, 403, 404), (route, response.status_code)
        if response.status_code == 302:
            assert not response.url.startswith("/admin/login/"), route
    assert client.get("/admin/").status_code == 200
