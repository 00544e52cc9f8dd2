"""One MP4 for viewing from a camera's recorded segments: the same packets, no re-encode.

Each segment is an MPEG-TS file with its own timestamps (a recorder restart starts them
afresh); the MP4 lays the files end to end, each starting one frame after the last.

The MP4 is a plain one (its index, `moov`, after the pictures), written to a file beside
the zip: C2PA's signing reads it back and writes the signed copy into the zip. Plain, not
fragmented: c2pa-rs hashes a fragmented MP4 about 4x slower (docs/C2PA.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
from av.container import InputContainer, OutputContainer
from av.video.stream import VideoStream


@dataclass
class Cursor:
    """Where the MP4 has got to, in the recordings' time base (MPEG-TS: 1/90000)."""

    last_dts: int | None = None
    step: int = 1  # the last gap between two frames: the next file starts that far on


def remux_to_mp4(
    files: list[Path], target: Path, *, on_file: Callable[[int], None] | None = None
) -> None:
    with av.open(str(target), "w", format="mp4") as output:
        stream: VideoStream | None = None
        cursor = Cursor()
        for index, path in enumerate(files):
            with av.open(str(path)) as source:
                if source.streams.video:
                    if stream is None:
                        stream = _stream(output, source)
                    _copy(source, output, stream, cursor)
            if on_file is not None:
                on_file(index)


def _stream(output: OutputContainer, source: InputContainer) -> VideoStream:
    video = source.streams.video[0]
    stream = output.add_stream_from_template(video)
    if video.codec_context.name == "hevc":
        stream.codec_tag = "hvc1"  # the tag Apple's players play
    return stream


def _copy(
    source: InputContainer, output: OutputContainer, stream: VideoStream, cursor: Cursor
) -> None:
    video = source.streams.video[0]
    offset: int | None = None
    for packet in source.demux(video):
        if packet.dts is None or packet.size == 0:
            continue
        if offset is None:
            begin = 0 if cursor.last_dts is None else cursor.last_dts + cursor.step
            offset = begin - packet.dts
        dts = packet.dts + offset
        if cursor.last_dts is not None and dts <= cursor.last_dts:
            # Timestamps that run back inside a file (a camera's clock reset): keep going.
            offset += cursor.last_dts + 1 - dts
            dts = cursor.last_dts + 1
        pts = (packet.pts if packet.pts is not None else packet.dts) + offset
        if cursor.last_dts is not None:
            cursor.step = dts - cursor.last_dts
        packet.dts, packet.pts = dts, pts
        packet.stream = stream
        output.mux(packet)
        cursor.last_dts = dts
