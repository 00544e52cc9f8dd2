"""Parse a media playlist and check it against RFC 8216's rules."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Playlist:
    target_duration: int
    media_sequence: int
    segments: list[tuple[float, str]]  # (EXTINF duration, URI)
    ended: bool


def playlist_parse(text: str) -> Playlist:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0] == "#EXTM3U", "a playlist starts with #EXTM3U (RFC 8216 4.3.1.1)"
    tags = {
        line.split(":", 1)[0]: line.partition(":")[2] for line in lines if line.startswith("#")
    }
    segments, duration = [], None
    for line in lines[1:]:
        if line.startswith("#EXTINF:"):
            duration = float(line.removeprefix("#EXTINF:").split(",")[0])
        elif not line.startswith("#"):
            assert duration is not None, "each URI follows its #EXTINF (4.3.2.1)"
            segments.append((duration, line))
            duration = None
    return Playlist(
        target_duration=int(tags["#EXT-X-TARGETDURATION"]),
        media_sequence=int(tags.get("#EXT-X-MEDIA-SEQUENCE", "0")),
        segments=segments,
        ended="#EXT-X-ENDLIST" in tags,
    )


def playlist_check(playlist: Playlist) -> None:
    # 4.3.3.1: each EXTINF rounded to the nearest integer is at most the target duration.
    for duration, _ in playlist.segments:
        assert math.floor(duration + 0.5) <= playlist.target_duration
    assert playlist.segments, "a live playlist lists at least one segment"
