"""From an access system's own words to our event types and times."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo

from accesslog.models import EventType

# Checked in order, on lower-cased text; the first match wins. A restore ("Door Forced
# Open Restored", NetBox's "Event deactivated") ends an alarm rather than raising one,
# so it maps to nothing.
RULES: list[tuple[re.Pattern[str], EventType | None]] = [
    (re.compile(r"restor|cancel|\bclear|deactivat"), None),
    (re.compile(r"duress"), EventType.DURESS),
    (re.compile(r"forced"), EventType.DOOR_FORCED),
    (re.compile(r"held"), EventType.DOOR_HELD),
    (re.compile(r"tamper"), EventType.TAMPER),
    (re.compile(r"intercom|call request|\bcall\b"), EventType.INTERCOM_CALL),
    (
        re.compile(r"denied|invalid|unknown (card|badge|credential)"),
        EventType.ACCESS_DENIED,
    ),
    (re.compile(r"granted"), EventType.ACCESS_GRANTED),
]


def event_type_of(*texts: str | None) -> EventType | None:
    """The type the first text that names one describes; None for anything else."""
    for text in texts:
        lowered = (text or "").strip().lower()
        if not lowered:
            continue
        for pattern, event_type in RULES:
            if pattern.search(lowered):
                return event_type
    return None


CIM_DATETIME = re.compile(r"^(\d{14})\.(\d{6})([+-])(\d{3})$")
SPACED_OFFSET = re.compile(r"(\d)\s+([+-]\d\d:?\d\d|Z)$")


def aware(text: str, tz: tzinfo) -> datetime:
    """An ISO 8601 (or WMI CIM) time; one without an offset is in the system's zone."""
    text = text.strip()
    if match := CIM_DATETIME.match(text):
        # DataConduIT's form, yyyymmddHHMMSS.ffffff+UUU with the offset in minutes.
        stamp, micro, sign, minutes = match.groups()
        offset = timedelta(minutes=int(minutes)) * (-1 if sign == "-" else 1)
        moment = datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(microsecond=int(micro))
        return moment.replace(tzinfo=timezone(offset))
    # NetBox writes "2026-11-28 09:15:02 -06:00"; ISO 8601 has no space before the offset.
    moment = datetime.fromisoformat(SPACED_OFFSET.sub(r"\1\2", text))
    if moment.tzinfo is None:
        # zoneinfo resolves a repeated hour (DST ends) to its first occurrence.
        moment = moment.replace(tzinfo=tz)
    return moment
