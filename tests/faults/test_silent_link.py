"""A link that drops every packet without a word (no FIN, no RST) between a tablet and
daphne: the tablet runs in a network namespace of its own, behind a router namespace whose
forwarding the test turns off and on. Linux only, as root (the test's own sandbox)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async

from responder.alarms import events
from responder.embedded_redis import free_port
from tests.factories import DoorFactory, GrantFactory, UserFactory, event_store
from tests.faults.feed_client import pwa_silent_limit
from tests.responder.test_events_socket import signed_in
from tests.servers import ROOT, daphne_command, serve, stop

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# daphne's own keepalive (deploy/systemd keeps its defaults, 20 s and 30 s; shorter here, to
# keep the run short): a peer that answers no ping is dropped.
PING_INTERVAL, PING_TIMEOUT = 5, 5


def ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", "netns", "exec", netns, *args] if netns else list(args)
    subprocess.run(command, check=True, capture_output=True)


@dataclass
class Link:
    server: str  # daphne's address, on the host's end of the link
    tablet: str  # the tablet's address
    tablet_netns: str
    router_netns: str

    def cut(self) -> None:
        ip("sysctl", "-qw", "net.ipv4.ip_forward=0", netns=self.router_netns)

    def restore(self) -> None:
        ip("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=self.router_netns)


@pytest.fixture
def link() -> Iterator[Link]:
    """host (daphne) ── router namespace ── tablet namespace, on subnets of the test's own."""
    if os.geteuid() != 0:
        pytest.fail("a silent link needs network namespaces: run the tests as root")
    n = os.getpid() % 200 + 20
    tag = f"f{os.getpid()}"
    router, tablet = f"{tag}r", f"{tag}t"
    host_net, tablet_net = f"10.231.{n}", f"10.232.{n}"
    ip("ip", "netns", "add", router)
    ip("ip", "netns", "add", tablet)
    try:
        ip("ip", "link", "add", f"{tag}h", "type", "veth", "peer", "name", f"{tag}rh")
        ip("ip", "link", "set", f"{tag}rh", "netns", router)
        ip(
            "ip",
            "link",
            "add",
            f"{tag}ra",
            "type",
            "veth",
            "peer",
            "name",
            f"{tag}ta",
            netns=router,
        )
        ip("ip", "link", "set", f"{tag}ta", "netns", tablet, netns=router)
        ip("ip", "addr", "add", f"{host_net}.1/30", "dev", f"{tag}h")
        ip("ip", "link", "set", f"{tag}h", "up")
        for address, device in ((f"{host_net}.2/30", "rh"), (f"{tablet_net}.1/30", "ra")):
            ip("ip", "addr", "add", address, "dev", f"{tag}{device}", netns=router)
            ip("ip", "link", "set", f"{tag}{device}", "up", netns=router)
        ip("ip", "addr", "add", f"{tablet_net}.2/30", "dev", f"{tag}ta", netns=tablet)
        ip("ip", "link", "set", f"{tag}ta", "up", netns=tablet)
        ip("ip", "link", "set", "lo", "up", netns=tablet)
        ip("ip", "route", "add", "default", "via", f"{tablet_net}.1", netns=tablet)
        ip("ip", "route", "add", f"{tablet_net}.0/30", "via", f"{host_net}.2")
        link = Link(f"{host_net}.1", f"{tablet_net}.2", tablet, router)
        link.restore()
        yield link
    finally:
        subprocess.run(["ip", "route", "del", f"{tablet_net}.0/30"], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{tag}h"], capture_output=True)
        for netns in (tablet, router):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)


@pytest.fixture
def daphne_on_the_link(link, redis_server, tmp_path) -> Iterator[int]:
    port = free_port()
    command = daphne_command(port)
    command[command.index("127.0.0.1")] = link.server
    command[-1:-1] = ["--ping-interval", str(PING_INTERVAL), "--ping-timeout", str(PING_TIMEOUT)]
    env = {"ALLOWED_HOSTS": f"localhost,127.0.0.1,{link.server}"}
    process = serve(command, port, tmp_path / "daphne.log", env, wait=False)
    try:
        deadline = time.monotonic() + 90
        while not listening(port):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        yield port
    finally:
        stop(process)


def listening(port: int) -> bool:
    result = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True)
    return bool(result.stdout.strip())


def held_by_daphne(port: int, peer: str) -> bool:
    """daphne still holds an open connection from `peer`."""
    result = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} and dst {peer} )"],
        capture_output=True,
        text=True,
    )
    return bool(result.stdout.strip())


class Tablet:
    """tests/faults/link_client.py in the tablet's namespace; its lines, as they come."""

    def __init__(self, link: Link, port: int, cookie: str, log) -> None:
        command = [sys.executable, "-m", "tests.faults.link_client", link.server, str(port)]
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", link.tablet_netns, *command, cookie],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
        )
        self.lines: list[dict] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(json.loads(line))
                self.changed.notify_all()

    def first(self, what: str, after: float = 0, seq: int | None = None, timeout: float = 90):
        deadline = time.monotonic() + timeout
        with self.changed:
            while time.monotonic() < deadline:
                for line in self.lines:
                    if (
                        line["what"] == what
                        and line["at"] > after
                        and (seq is None or line["seq"] == seq)
                    ):
                        return line
                self.changed.wait(0.2)
        raise AssertionError(f"the tablet never said {what} (seq {seq}): {self.lines}")

    def seqs(self) -> list[int]:
        return [line["seq"] for line in self.lines if line["what"] == "event"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def alarms(door, count: int) -> list[int]:
    seqs = []
    for _ in range(count):
        event = event_store(door)
        events.announce(event)
        seqs.append(event.seq)
    return seqs


def setup_tablet_user():
    door = DoorFactory()
    user = UserFactory()
    GrantFactory(user=user, capabilities=["alarms"], building=door.building)
    return door, signed_in(user)


async def test_a_silently_dropped_link_is_noticed_on_both_ends_and_the_tablet_resumes(
    link, daphne_on_the_link, tmp_path
):
    port = daphne_on_the_link
    door, cookie = await database_sync_to_async(setup_tablet_user)()
    tablet = Tablet(link, port, cookie, tmp_path / "tablet.log")
    try:
        tablet.first("live")
        seqs = await database_sync_to_async(alarms)(door, 2)
        tablet.first("event", seq=seqs[-1])
        peer = link.tablet
        assert held_by_daphne(port, peer)

        link.cut()
        cut_at = time.monotonic()
        seqs += await database_sync_to_async(alarms)(door, 2)  # the tablet cannot hear them
        lost = tablet.first("lost", after=cut_at)
        deadline = time.monotonic() + 60
        while held_by_daphne(port, peer):
            assert time.monotonic() < deadline, "daphne still holds the dead socket"
            time.sleep(0.2)
        freed_at = time.monotonic()

        link.restore()
        back = tablet.first("live", after=freed_at)
        seqs += await database_sync_to_async(alarms)(door, 1)
        tablet.first("event", seq=seqs[-1])
    finally:
        tablet.stop()

    # The tablet calls the link dead within the PWA's silence limit (link.js), with a
    # second's slack.
    # daphne looks every 2 s, pings a peer silent for PING_INTERVAL and drops it PING_TIMEOUT
    # later: 12 s at most, given as much again for a loaded machine.
    assert lost["at"] - cut_at < pwa_silent_limit() + 1
    assert freed_at - cut_at < 2 * (PING_INTERVAL + PING_TIMEOUT + 2)
    assert back["at"] > freed_at
    assert tablet.seqs() == seqs  # the missed alarms came on resume, each once
