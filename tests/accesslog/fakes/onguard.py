"""A stand-in for OnGuard's OpenAccess REST API: sign-in, session tokens, logged events.

Shapes from public OpenAccess clients: POST /authentication with user_name, password and
directory_id answers a session_token; later requests carry Session-Token and
Application-Id; GET /instances?type_name=Lnl_LoggedEvent answers item_list entries of
property_value_map, with the DataConduIT Lnl_LoggedEvent fields.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

from tests.accesslog.fakes.server import FakeHTTPServer, QuietHandler

API = "/api/access/onguard/openaccess"
CLASS_SPELLING = {
    "SERIALNUMBER": "SerialNumber",
    "PANELID": "PanelID",
    "DEVICEID": "DeviceID",
    "SECONDARYDEVICEID": "SecondaryDeviceID",
    "TIME": "Time",
    "DESCRIPTION": "Description",
    "EVENTTEXT": "EventText",
    "TYPE": "Type",
    "SUBTYPE": "SubType",
    "CARDNUMBER": "CardNumber",
    "ACCESSRESULT": "AccessResult",
    "PERSONID": "PersonID",
    "DURESS": "Duress",
}
FILTER = re.compile(r"^\s*SERIALNUMBER\s*>\s*(\d+)\s*$", re.IGNORECASE)


@dataclass
class FakeOnGuard:
    username: str = "responder"
    password: str = "s3cret"
    directory_id: str = "id-1"
    application_id: str = "RESPONDER-TEST"
    events: list[dict] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    # Statuses to answer the next /instances requests with, one each, before real answers.
    failures: list[int] = field(default_factory=list)
    # Spell properties as the class declares them (SerialNumber), not upper-cased.
    class_spelling: bool = False
    sign_ins: int = 0
    queries: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def event_add(self, **fields: object) -> dict:
        with self.lock:
            serial = max((e["SERIALNUMBER"] for e in self.events), default=1000) + 1
            event = {
                "SERIALNUMBER": serial,
                "PANELID": 1,
                "DEVICEID": 1,
                "SECONDARYDEVICEID": 0,
                "TIME": "2026-11-28T08:00:00-06:00",
                "DESCRIPTION": "Access Granted",
                "EVENTTEXT": "",
                "TYPE": 0,
                "SUBTYPE": 0,
                "CARDNUMBER": 0,
                "ACCESSRESULT": 0,
                "PERSONID": 0,
                **fields,
            }
            self.events.append(event)
            return event

    def sessions_expire(self) -> None:
        with self.lock:
            self.tokens.clear()

    def serve(self) -> FakeHTTPServer:
        return FakeHTTPServer(Handler, self)


class Handler(QuietHandler):
    server: FakeHTTPServer

    @property
    def fake(self) -> FakeOnGuard:
        return self.server.fake  # type: ignore[return-value]

    def reply(self, status: int, payload: dict) -> None:
        self.answer(status, json.dumps(payload).encode(), "application/json")

    def error(self, status: int, message: str) -> None:
        self.reply(status, {"error": {"code": f"openaccess.{status}", "message": message}})

    def do_POST(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        if url.path != f"{API}/authentication" or parse_qs(url.query).get("version") != ["1.0"]:
            return self.error(404, "not found")
        if self.headers.get("Application-Id") != self.fake.application_id:
            return self.error(401, "unlicensed application")
        body = json.loads(self.body() or b"{}")
        wanted = (self.fake.username, self.fake.password, self.fake.directory_id)
        if (body.get("user_name"), body.get("password"), body.get("directory_id")) != wanted:
            return self.error(401, "invalid credentials")
        token = secrets.token_hex(16)
        with self.fake.lock:
            self.fake.tokens.add(token)
            self.fake.sign_ins += 1
        self.reply(200, {"session_token": token, "token_expiration_time": "", "version": "1.0"})

    def do_GET(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        if url.path != f"{API}/instances" or query.get("type_name") != "Lnl_LoggedEvent":
            return self.error(404, "not found")
        if self.headers.get("Application-Id") != self.fake.application_id:
            return self.error(401, "unlicensed application")
        with self.fake.lock:
            if self.headers.get("Session-Token") not in self.fake.tokens:
                return self.error(401, "invalid session token")
            if self.fake.failures:
                return self.error(self.fake.failures.pop(0), "server trouble")
            self.fake.queries.append(query)
            events = list(self.fake.events)
        match = FILTER.match(query.get("filter", ""))
        if not match or query.get("order_by", "").upper() != "SERIALNUMBER":
            return self.error(400, "this fake only answers SERIALNUMBER > n, ordered by it")
        after, size = int(match.group(1)), int(query.get("page_size", 10))
        found = sorted(
            (e for e in events if e["SERIALNUMBER"] > after), key=lambda e: e["SERIALNUMBER"]
        )
        page = found[:size]
        if self.fake.class_spelling:
            page = [{CLASS_SPELLING.get(k, k): v for k, v in event.items()} for event in page]
        self.reply(
            200,
            {
                "page_number": 1,
                "page_size": size,
                "total_pages": max(1, -(-len(found) // size)),
                "total_items": len(found),
                "count": len(page),
                "type_name": "Lnl_LoggedEvent",
                "item_list": [{"property_value_map": event} for event in page],
                "version": "1.0",
            },
        )
