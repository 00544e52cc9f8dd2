"""LenelS2 OnGuard through OpenAccess (REST): poll logged events after the last serial."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import tzinfo
from urllib.parse import urlencode

from accesslog.connectors.base import (
    SessionExpired,
    Stopper,
    Tally,
    TransientError,
    cursor_position,
    event_feed,
)
from accesslog.connectors.http import Endpoint, HTTPStatusError, http_open
from accesslog.connectors.mapping import aware, event_type_of
from accesslog.models import AccessSystem, EventType

log = logging.getLogger("accesslog.connectors")

API = "/api/access/onguard/openaccess"
VERSION = "1.0"
# Lnl_LoggedEvent.ACCESSRESULT (DataConduIT): 0 other, 1 unknown, 2 granted, 3 denied, 4 n/a.
ACCESS_RESULTS = {2: EventType.ACCESS_GRANTED, 3: EventType.ACCESS_DENIED}


@dataclass
class OnGuardClient:
    endpoint: Endpoint
    username: str
    password: str
    directory_id: str
    application_id: str
    session_token: str = field(default="", repr=False)

    def authenticate(self) -> None:
        body = {
            "user_name": self.username,
            "password": self.password,
            "directory_id": self.directory_id,
        }
        answer = self._request("POST", "/authentication", body=body, signed_in=False)
        token = answer.get("session_token")
        if not token:
            raise TransientError(f"OpenAccess sign-in answered no session_token: {answer}")
        self.session_token = token
        log.info("OpenAccess: signed in as %s", self.username)

    def logged_events_after(self, serial: int, *, page_size: int) -> list[dict]:
        """Up to page_size logged events with a higher serial number, oldest first."""
        query = {
            "type_name": "Lnl_LoggedEvent",
            "filter": f"SERIALNUMBER > {serial}",
            "order_by": "SERIALNUMBER",
            "page_number": 1,
            "page_size": page_size,
        }
        answer = self._get("/instances", query)
        try:
            rows = [_upper_keys(item["property_value_map"]) for item in answer["item_list"]]
            return sorted(rows, key=lambda row: int(row["SERIALNUMBER"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise TransientError(f"OpenAccess answered an unexpected shape: {exc!r}") from None

    def _get(self, path: str, query: dict) -> dict:
        if not self.session_token:
            self.authenticate()
        try:
            return self._request("GET", path, query=query)
        except SessionExpired:
            # The session timed out (OpenAccess idles them out): sign in once more.
            self.authenticate()
            return self._request("GET", path, query=query)

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: dict | None = None,
        body: dict | None = None,
        signed_in: bool = True,
    ) -> dict:
        headers = {
            "Application-Id": self.application_id,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        if signed_in:
            headers["Session-Token"] = self.session_token
        url = f"{API}{path}?{urlencode({'version': VERSION, **(query or {})})}"
        data = json.dumps(body).encode() if body is not None else None
        try:
            with http_open(self.endpoint, url, method=method, body=data, headers=headers) as r:
                raw = r.read()
        except HTTPStatusError as exc:
            if exc.status == 401 and signed_in:
                raise SessionExpired(str(exc)) from None
            raise
        try:
            return json.loads(raw)
        except ValueError:
            raise TransientError(f"OpenAccess answered non-JSON: {raw[:200]!r}") from None


def _upper_keys(values: dict) -> dict:
    # OpenAccess spells properties as the class defines them (SerialNumber, PanelID);
    # DataConduIT queries upper-case them. Either way, one spelling here.
    return {key.upper(): value for key, value in values.items()}


def _text(value: object) -> str:
    return "" if value in (None, 0, "0") else str(value)


def logged_event_payload(row: dict, *, tz: tzinfo) -> dict | None:
    """The ingest payload of an Lnl_LoggedEvent, or None for a kind we do not map."""
    description, event_text = row.get("DESCRIPTION") or "", row.get("EVENTTEXT") or ""
    if row.get("DURESS") in (True, "true", "True", 1):
        event_type = EventType.DURESS
    else:
        event_type = event_type_of(description, event_text) or ACCESS_RESULTS.get(
            int(row.get("ACCESSRESULT") or 0)
        )
    if event_type is None:
        return None
    payload = {
        "source_event_id": str(row["SERIALNUMBER"]),
        "type": str(event_type),
        "door": f"{row.get('PANELID')}-{row.get('DEVICEID')}",
        "occurred_at": aware(str(row["TIME"]), tz).isoformat(),
        "details": {
            key.lower(): row.get(key)
            for key in (
                "DESCRIPTION",
                "EVENTTEXT",
                "TYPE",
                "SUBTYPE",
                "ACCESSRESULT",
                "PANELID",
                "DEVICEID",
                "SECONDARYDEVICEID",
            )
            if row.get(key) not in (None, "")
        },
    }
    if credential := _text(row.get("CARDNUMBER")):
        payload["credential"] = credential
    if person := _text(row.get("PERSONID")):
        payload["person"] = person
    return payload


@dataclass
class OnGuardConnector:
    system: AccessSystem
    client: OnGuardClient
    tz: tzinfo
    stopper: Stopper = field(default_factory=Stopper)
    page_size: int = 100
    idle_delay: float = 2.0
    tally: Tally = field(default_factory=Tally)

    def step(self) -> int:
        # The cursor is read from the database each time: it is the only truth. OnGuard
        # gives each logged event a growing serial number: "after the last" misses none.
        after = int(cursor_position(self.system) or 0)
        with self.stopper.blocking():
            rows = self.client.logged_events_after(after, page_size=self.page_size)
        for row in rows:
            if self.stopper.stopped:
                break
            event_feed(
                system=self.system,
                position=str(row["SERIALNUMBER"]),
                tally=self.tally,
                raw=row,
                build=lambda row=row: logged_event_payload(row, tz=self.tz),
            )
        if rows:
            log.info(
                "%s: up to serial %s; so far %s",
                self.system.slug,
                rows[-1]["SERIALNUMBER"],
                self.tally.summary(),
            )
        return len(rows)

    def reset(self) -> None:
        self.client.session_token = ""
