"""A live stack for the browser tests, shared by the whole package: daphne serving the built
app, a Celery worker on the video queue, a simulated camera, all on the test database and
the test run's Redis; Debian's Chromium driven by Playwright.

Tests that use it are `django_db(transaction=True)`: what they write is committed, so the
daphne and worker processes see it, and it is flushed after each test.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from accesslog.models import Door
from accesslog.signatures import HEADER, sign
from responder.core.redis import redis_client
from responder.demo.simulate import simulator_running
from responder.embedded_redis import free_port
from tests.factories import (
    PASSWORD,
    AccessSystemFactory,
    BuildingFactory,
    CameraFactory,
    CampusFactory,
    DoorFactory,
    FloorFactory,
    GrantFactory,
    UserFactory,
)
from tests.recording.playback_helpers import recording_make
from tests.servers import database_url
from tests.signin_helpers import code_for, usable_device

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORTS = {
    "phone": {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True},
    "phone-landscape": {
        "viewport": {"width": 740, "height": 360},
        "is_mobile": True,
        "has_touch": True,
    },
    "tablet": {"viewport": {"width": 1280, "height": 800}},
}
SECRET = "browser-tests-webhook-secret"
# The alarm feed's socket, with or without the `?after=N` it resumes with.
FEED_SOCKET = re.compile(r"/ws/events(\?|$)")
# Every page waits this long at most for what it expects (the machine is shared and slow).
expect.set_options(timeout=15_000)


def wait_for_http(url: str, process: subprocess.Popen, log: Path) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise AssertionError(f"{process.args[2]} exited:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answers at {url}:\n{log.read_text()[-3000:]}")


def frontend_built() -> None:
    """Builds frontend/dist when it is missing or older than its sources (make knows)."""
    subprocess.run(["make", "--quiet", "-C", str(FRONTEND)], check=True)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="package", autouse=True)
def _sync_orm_beside_playwright() -> Iterator[None]:
    # Playwright's sync API keeps an event loop in this thread, and Django then refuses ORM
    # calls here; the tests' ORM calls run between browser steps, never inside that loop.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="package")
def stack_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(autouse=True)
def _media_root(settings, stack_dir):
    # Floor plans written by the factories here must be the files daphne serves.
    settings.MEDIA_ROOT = stack_dir / "media"


@pytest.fixture(scope="package")
def stack_env(django_db_setup, stack_dir) -> dict[str, str]:
    """The environment of every server process: the test database, this run's Redis."""
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "responder.settings",
        "DEBUG": "true",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "MEDIA_ROOT": str(stack_dir / "media"),
        "LIVE_ROOT": str(stack_dir / "live"),
        "RECORDINGS_ROOT": str(stack_dir / "recordings"),
        # Evidence zips and the development signing key: this run's, not the checkout's.
        "EVIDENCE_ROOT": str(stack_dir / "evidence"),
        "EVIDENCE_DEV_KEY_DIR": str(stack_dir / "keys"),
        "LIVE_IDLE_SECONDS": "5",
        "CAMERA_TIMEOUT": "5",
        "LIVE_START_TIMEOUT": "20",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="package")
def video_worker(stack_env, stack_dir) -> Iterator[subprocess.Popen]:
    """A Celery worker as the Procfile runs one (prefork, both queues), fewer processes.
    `live_url` waits for it to be ready while daphne starts."""
    log = stack_dir / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "responder", "worker", "-Q", "default,video",
         "--pool", "prefork", "--concurrency", "4", "--without-gossip", "--without-mingle",
         "--loglevel", "INFO"],
        cwd=ROOT, env=stack_env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    worker.log = log
    yield worker
    # Live sessions stop when their locks go; then the warm shutdown has nothing to wait for.
    r = redis_client()
    for key in r.scan_iter("live:*"):
        r.delete(key)
    stop(worker)


def wait_for_worker(worker: subprocess.Popen) -> None:
    for _ in range(600):
        if worker.poll() is not None:
            break
        if "ready." in worker.log.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"the Celery worker did not start:\n{worker.log.read_text()[-3000:]}")


@pytest.fixture(scope="package")
def live_url(stack_env, stack_dir, video_worker) -> Iterator[str]:
    """http://127.0.0.1:<port> of a real daphne serving the built app and the API, with a
    ready Celery worker behind it."""
    frontend_built()
    port = free_port()
    log = stack_dir / "daphne.log"
    daphne = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "responder.asgi:application"],
        cwd=ROOT, env=stack_env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/manifest.webmanifest", daphne, log)
        wait_for_worker(video_worker)
        yield url
    finally:
        stop(daphne)


@pytest.fixture(scope="package")
def camera_url() -> Iterator[str]:
    """A simulated camera server (responder/demo/simulate.py); a camera's stream URL points here."""
    with simulator_running() as url:
        yield url


def simulated_stream(camera_url: str, name: str) -> str:
    return f"{camera_url}/{name}/video.ts?size=426x240&fps=15&kbps=300&gop=15"


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless, with a fresh profile (Playwright makes one per launch)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Debian's Chromium is missing at {CHROMIUM}. Install it: apt-get install chromium"
        )
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def viewport(request) -> str:
    """The phone (360×740, touch) unless a test asks for "phone-landscape" or "tablet"
    (1280×800), indirectly:
    `@pytest.mark.parametrize("viewport", ["phone", "tablet"], indirect=True)`."""
    return getattr(request, "param", "phone")


class PageErrors:
    """Every uncaught exception and console error of a context's pages. A test fails on any
    at teardown, unless it said beforehand, narrowly, which one it causes on purpose:
    `context.errors.expect(r"net::ERR_INTERNET_DISCONNECTED", why="…")`."""

    def __init__(self, context: BrowserContext) -> None:
        self.found: list[str] = []
        # Chromium logs every 4xx a fetch gets; auth/me refusing is how the app learns that
        # nobody is signed in (a first visit, a session that ended), not a fault.
        self.expected: list[re.Pattern] = [
            re.compile(r"status of 40[13] .*\(http://[^/]+/api/v1/auth/me\)$")
        ]
        context.on("weberror", lambda error: self.found.append(f"uncaught: {error.error}"))
        context.on("console", self.console)

    def console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        where = message.location.get("url", "") if message.location else ""
        self.found.append(f"console: {message.text} ({where})")

    def expect(self, pattern: str, *, why: str) -> None:
        assert why, "say why this error is expected"
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.found if not any(p.search(e) for p in self.expected)]

    def check(self) -> None:
        if problems := self.unexpected():
            pytest.fail("the page reported errors:\n" + "\n".join(problems), pytrace=False)


def watched(context: BrowserContext) -> BrowserContext:
    context.errors = PageErrors(context)
    return context


@pytest.fixture
def context(browser, live_url, viewport) -> Iterator[BrowserContext]:
    context = watched(browser.new_context(base_url=live_url, **VIEWPORTS[viewport]))
    context.set_default_timeout(15_000)
    yield context
    try:
        context.errors.check()
    finally:
        context.close()


@pytest.fixture
def page(context) -> Page:
    """A tab of `context`. The shell's CSP forbids eval: give `page.wait_for_function` a
    function ("() => …"), never a bare expression."""
    page = context.new_page()
    page.errors = []  # uncaught exceptions in the page, for a test's own asserts
    page.on("pageerror", lambda error: page.errors.append(error))
    return page


@pytest.fixture
def shots(request, page, viewport) -> Callable[[str], Path]:
    """`shots("map-floor")` saves the page to test-artifacts/screenshots/<test>-<name>-<viewport>.png
    (a folder git ignores), for a person to look at."""
    test = re.sub(r"\[.*\]$", "", request.node.name).removeprefix("test_")

    def shoot(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{test}-{name}-{viewport}.png"
        page.screenshot(path=str(path))
        return path

    return shoot


def plan(title: str) -> ContentFile:
    """A floor plan a person can read in the screenshots: walls, four rooms, its name."""
    rooms = "".join(
        f'<rect x="{x}" y="{y}" width="230" height="200" fill="#f4f1ea" stroke="#444" '
        f'stroke-width="4"/><text x="{x + 20}" y="{y + 40}" font-size="24">Room {n}</text>'
        for n, (x, y) in enumerate([(40, 40), (290, 40), (540, 40), (40, 360)], start=101)
    )
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000 600">'
        '<rect x="20" y="20" width="960" height="560" fill="#fff" stroke="#222" '
        f'stroke-width="8"/>{rooms}<text x="560" y="460" font-size="36">{title}</text></svg>'
    )
    return ContentFile(svg.encode(), name="plan.svg")


@pytest.fixture
def district(camera_url) -> dict:
    """North Campus: a library (two floors, two cameras on the simulator, two doors) and a gym;
    South Campus with an annex. The doors belong to an access system whose secret is SECRET."""
    north = CampusFactory(name="North Campus")
    south = CampusFactory(name="South Campus", district=north.district)
    library = BuildingFactory(campus=north, name="Library")
    gym = BuildingFactory(campus=north, name="Gym")
    annex = BuildingFactory(campus=south, name="Annex")
    ground = FloorFactory(
        building=library, name="Library Ground", level=1, plan=plan("Library Ground")
    )
    upper = FloorFactory(
        building=library, name="Library Upper", level=2, plan=plan("Library Upper")
    )
    court = FloorFactory(building=gym, name="Gym Court", level=1, plan=plan("Gym Court"))
    annex_ground = FloorFactory(
        building=annex, name="Annex Ground", level=1, plan=plan("Annex Ground")
    )
    system = AccessSystemFactory(name="OnGuard", slug="onguard", webhook_secret=SECRET)
    lobby = CameraFactory(
        building=library, floor=ground, name="Library Lobby",
        main_stream_url=simulated_stream(camera_url, "lobby"),
        x=300, y=200, heading=90, field_of_view=70,
    )  # fmt: skip
    stacks = CameraFactory(
        building=library, floor=upper, name="Library Stacks",
        main_stream_url=simulated_stream(camera_url, "stacks"),
        x=600, y=300, heading=180, field_of_view=60,
    )  # fmt: skip
    court_east = CameraFactory(
        building=gym, floor=court, name="Gym Court East", x=200, y=100, heading=0
    )
    annex_hall = CameraFactory(
        building=annex, floor=annex_ground, name="Annex Hall", x=400, y=300, heading=270
    )
    front = DoorFactory(
        system=system, building=library, floor=ground, name="Library Front Door",
        external_id="lib-front", x=500, y=300,
    )  # fmt: skip
    front.cameras.add(lobby)
    back = DoorFactory(
        system=system, building=library, floor=ground, name="Library Back Door",
        external_id="lib-back", x=900, y=300,
    )  # fmt: skip
    gym_exit = DoorFactory(
        system=system, building=gym, floor=court, name="Gym Exit", external_id="gym-exit",
        x=100, y=500,
    )  # fmt: skip
    gym_exit.cameras.add(court_east)
    return {
        "north": north, "south": south, "library": library, "gym": gym, "annex": annex,
        "ground": ground, "upper": upper, "court": court, "system": system,
        "lobby": lobby, "stacks": stacks, "court_east": court_east, "annex_hall": annex_hall,
        "front_door": front, "back_door": back, "gym_exit": gym_exit,
    }  # fmt: skip


@pytest.fixture
def officer():
    """A user with a TOTP device and live video + alarms over the whole district."""
    user = UserFactory(username="officer", first_name="Dana", last_name="Reyes")
    usable_device(user)
    GrantFactory(user=user, capabilities=["live", "alarms"])
    return user


def sign_in(page: Page, user, path: str = "/") -> None:
    """Signs in through the form with the device's current code; waits for the main nav."""
    page.goto(path)
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("One-time code").fill(code_for(usable_device(user)))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def dismiss_all(page: Page) -> None:
    """Dismisses every alarm on the takeover (they stay in the feed, unacknowledged)."""
    banner = page.get_by_role("alertdialog")
    while banner.is_visible():
        banner.get_by_role("button", name=re.compile("^Dismiss")).click()


def takeover_dismiss(page: Page) -> None:
    """Waits for an alarm's takeover, then dismisses it: for tests of the screens beneath."""
    expect(page.get_by_role("alertdialog")).to_be_visible()
    dismiss_all(page)


@pytest.fixture
def signed_in(page, officer) -> Page:
    """The page, signed in as the officer, on the map."""
    sign_in(page, officer)
    return page


@pytest.fixture
def post_alarm(live_url) -> Callable[..., dict]:
    """`post_alarm(door, "door_forced")`: a signed POST to the live ingest endpoint, as the
    door's access system sends one; returns the answer ({"id", "seq"})."""
    count = iter(range(1, 1_000_000))

    def post(door: Door, type: str = "door_forced", **fields) -> dict:
        body = json.dumps(
            {
                "source_event_id": f"browser-{time.time_ns()}-{next(count)}",
                "type": type,
                "door": door.external_id,
                "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **fields,
            }
        ).encode()
        request = urllib.request.Request(
            f"{live_url}/api/v1/access/{door.system.slug}/events",
            data=body,
            headers={
                "Content-Type": "application/json",
                HEADER: sign(body, door.system.webhook_secret),
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in (200, 202), response.read()
            return json.load(response)

    return post


@pytest.fixture
def recorded(settings, stack_dir, district):
    """A minute of the lobby camera, up to now, in files of 20 s."""
    settings.RECORDINGS_ROOT = stack_dir / "recordings"
    start = (timezone.now() - dt.timedelta(seconds=60)).replace(microsecond=0)
    recording_make(district["lobby"], start, seconds=60, segment_seconds=20)
    return start
