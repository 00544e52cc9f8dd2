"""A stand-in for a LenelS2 NetBox NBAPI: Login and StreamEvents.

Shapes from public NBAPI clients: XML commands POSTed to /nbws/goforms/nbapi inside
<NETBOX-API sessionid="…">; answers <NETBOX sessionid="…"><RESPONSE command="…">; a bad
session gets <APIERROR>5</APIERROR>. StreamEvents answers multipart/related, one
text/xml part per event (<RESPONSE command="StreamEvents"><EVENT>…) or keep-alive ping
(a RESPONSE without EVENT), on a response that stays open.
"""

from __future__ import annotations

import secrets
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.accesslog.fakes.server import FakeHTTPServer, QuietHandler

PATH = "/nbws/goforms/nbapi"
BOUNDARY = "NetBoxBoundary4f1c"


def netbox_event(**fields: str) -> dict[str, str]:
    return {
        "ACTIVITYID": "",
        "CDT": "2026-11-28 08:00:00",
        "DESCNAME": "Access granted",
        "EVTNAME": "",
        "PERSONNAME": "",
        "PERSONID": "",
        "PORTALNAME": "Main entrance",
        "RDRNAME": "Main entrance reader",
        "NODENAME": "Node 1",
        **fields,
    }


@dataclass
class FakeNetBox:
    username: str = "responder"
    password: str = "s3cret"
    events: list[dict[str, str]] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    logins: int = 0
    streams: int = 0
    # Bytes per write: a small number cuts tags and documents across TCP segments.
    write_size: int = 65536
    # Called after each event part is sent, with its index: lets a test hold the stream.
    after_event: Callable[[int], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sessions_expire(self) -> None:
        with self.lock:
            self.sessions.clear()

    def serve(self) -> FakeHTTPServer:
        return FakeHTTPServer(Handler, self)


def document(command: str, *, session_id: str = "", children: str = "") -> bytes:
    attributes = f' sessionid="{session_id}"' if session_id else ""
    return (
        f'<NETBOX{attributes}><RESPONSE command="{command}" num="1">{children}</RESPONSE></NETBOX>'
    ).encode()


def event_xml(fields: dict[str, str]) -> str:
    event = ET.Element("EVENT")
    for tag, value in fields.items():
        ET.SubElement(event, tag).text = value
    return ET.tostring(event, encoding="unicode")


class Handler(QuietHandler):
    server: FakeHTTPServer

    @property
    def fake(self) -> FakeNetBox:
        return self.server.fake  # type: ignore[return-value]

    def do_POST(self) -> None:  # noqa: N802
        if self.path != PATH:
            return self.answer(410, b"Gone", "text/plain")
        try:
            root = ET.fromstring(self.body())
        except ET.ParseError:
            return self.xml(document("", children="<APIERROR>4</APIERROR>"))
        command = root.find("COMMAND")
        name = command.get("name") if command is not None else ""
        if name == "Login":
            return self.login(command)
        if root.get("sessionid") not in self.fake.sessions:
            return self.xml(document(name, children="<APIERROR>5</APIERROR>"))
        if name == "StreamEvents":
            return self.stream()
        self.xml(document(name, children="<APIERROR>6</APIERROR>"))

    def xml(self, body: bytes) -> None:
        self.answer(200, body, "text/xml")

    def login(self, command: ET.Element) -> None:
        given = (command.findtext("PARAMS/USERNAME"), command.findtext("PARAMS/PASSWORD"))
        if given != (self.fake.username, self.fake.password):
            fail = "<CODE>FAIL</CODE><DETAILS><ERRMSG>Invalid login</ERRMSG></DETAILS>"
            return self.xml(document("Login", children=fail))
        session_id = secrets.token_hex(8)
        with self.fake.lock:
            self.fake.sessions.add(session_id)
            self.fake.logins += 1
        self.xml(document("Login", session_id=session_id, children="<CODE>SUCCESS</CODE>"))

    def stream(self) -> None:
        with self.fake.lock:
            self.fake.streams += 1
            events = list(self.fake.events)
        # HTTP/1.0 and no Content-Length: the stream is open until the server closes it.
        self.send_response(200)
        self.send_header(
            "Content-Type", f'multipart/related; type="text/xml"; boundary={BOUNDARY}'
        )
        self.end_headers()
        self.part(document("StreamEvents"))  # a ping
        for index, fields in enumerate(events):
            self.part(document("StreamEvents", children=event_xml(fields)))
            self.part(document("StreamEvents"))
            if self.fake.after_event:
                self.fake.after_event(index)

    def part(self, xml: bytes) -> None:
        data = (
            f"--{BOUNDARY}\r\nContent-Type: text/xml\r\nContent-Length: {len(xml)}\r\n\r\n".encode()
            + xml
            + b"\r\n"
        )
        size = self.fake.write_size
        for start in range(0, len(data), size):
            self.wfile.write(data[start : start + size])
            self.wfile.flush()
