"""A stand-in for a LenelS2 NetBox NBAPI: Login, StreamEvents and GetAccessHistory.

Shapes from public NBAPI clients: XML commands POSTed to /nbws/goforms/nbapi inside
<NETBOX-API sessionid="…">; answers <NETBOX sessionid="…"><RESPONSE command="…">; a bad
session gets <APIERROR>5</APIERROR>. StreamEvents answers multipart/related, one
text/xml part per event (<RESPONSE command="StreamEvents"><EVENT>…) or keep-alive ping
(a RESPONSE without EVENT), on a response that stays open.

GetAccessHistory (J-MaFf/s2-netbox-mcp, checked there against a NetBox 6.2 controller):
with AFTERLOGID, up to MAXRECORDS records with a higher LOGID in ascending order, and
NEXTLOGID the highest LOGID plus one; without it, the newest first. Records are
DETAILS/ACCESSES/ACCESS with LOGID, PERSONID, READER, READERKEY, PORTALKEY, PORTALNAME,
DTTM, NODEDTTM, TYPE and REASON (a code only on an invalid access). Nothing to answer is
CODE "NOT FOUND" (how RSM's S2 client reads it). The default page size is a guess.
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
DEFAULT_MAXRECORDS = 20


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


def access_record(**fields: str) -> dict[str, str]:
    return {
        "LOGID": "",
        "PERSONID": "",
        "READER": "Main entrance reader",
        "READERKEY": "7",
        "PORTALKEY": "3",
        "PORTALNAME": "Main entrance",
        "DTTM": "2026-11-28 08:00:00",
        "NODEDTTM": "2026-11-28 08:00:00",
        "TYPE": "1",
        "REASON": "",
        **fields,
    }


@dataclass
class FakeNetBox:
    username: str = "responder"
    password: str = "s3cret"
    # What StreamEvents sends on every connection (a controller that sends again).
    events: list[dict[str, str]] = field(default_factory=list)
    # The access log GetAccessHistory reads; it holds accesses only, never alarms.
    history: list[dict[str, str]] = field(default_factory=list)
    history_queries: list[dict[str, str]] = field(default_factory=list)
    # An API user without the right to read the log: GetAccessHistory fails.
    history_refused: bool = False
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


def record_xml(fields: dict[str, str], *, tag: str = "EVENT") -> str:
    record = ET.Element(tag)
    for name, value in fields.items():
        ET.SubElement(record, name).text = value
    return ET.tostring(record, encoding="unicode")


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
        if name == "GetAccessHistory":
            return self.access_history(command)
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

    def access_history(self, command: ET.Element) -> None:
        params = {child.tag: (child.text or "") for child in command.iterfind("PARAMS/*")}
        with self.fake.lock:
            self.fake.history_queries.append(params)
            history = sorted(self.fake.history, key=lambda access: int(access["LOGID"]))
        if self.fake.history_refused:
            fail = "<CODE>FAIL</CODE><DETAILS><ERRMSG>Permission denied</ERRMSG></DETAILS>"
            return self.xml(document("GetAccessHistory", children=fail))
        size = int(params.get("MAXRECORDS") or DEFAULT_MAXRECORDS)
        if "AFTERLOGID" in params:
            page = [a for a in history if int(a["LOGID"]) > int(params["AFTERLOGID"])][:size]
        else:
            page = history[::-1][:size]
        if not page:
            return self.xml(document("GetAccessHistory", children="<CODE>NOT FOUND</CODE>"))
        accesses = "".join(record_xml(access, tag="ACCESS") for access in page)
        next_log_id = max(int(access["LOGID"]) for access in page) + 1
        details = f"<ACCESSES>{accesses}</ACCESSES><NEXTLOGID>{next_log_id}</NEXTLOGID>"
        children = f"<CODE>SUCCESS</CODE><DETAILS>{details}</DETAILS>"
        self.xml(document("GetAccessHistory", children=children))

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
            self.part(document("StreamEvents", children=record_xml(fields)))
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
