"""PyAV work on camera streams: pure functions over sources, frames and files.

Nothing here knows about Django, Redis or Celery; see cameras/live.py for the sessions.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import av
from av.video.frame import PictureType

from responder.core.redact import credentials_strip

PLAYLIST = "index.m3u8"
SEGMENT_PATTERN = "seg%d.ts"


@dataclass(frozen=True)
class Profile:
    name: str
    width: int
    height: int
    fps: int
    bitrate: int  # the cap, in bits per second


PROFILES = {
    "low": Profile("low", 426, 240, 10, 150_000),
    "medium": Profile("medium", 640, 360, 15, 300_000),
    "high": Profile("high", 1280, 720, 15, 1_200_000),
}
SOURCE = "source"  # the camera's own stream, remuxed
PROFILE_NAMES = [*PROFILES, SOURCE]


class SourceError(Exception):
    """The camera cannot be read.

    `reason` is a plain sentence for viewers; `detail` is FFmpeg's own words for IT (camera
    health), which name the stream URL: never shown to viewers, credentials removed.
    """

    def __init__(self, reason: str, detail: object = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = credentials_strip(str(detail))
        self.streamed = False  # set by hls_write: whether a segment was out before it failed

    @property
    def full(self) -> str:
        return f"{self.reason} ({self.detail})" if self.detail else self.reason


@dataclass(frozen=True)
class StreamInfo:
    codec: str
    width: int
    height: int
    fps: float
    bitrate: int


def fits_profile(info: StreamInfo, profile: Profile) -> bool:
    """A stream any browser plays within the profile's limits (half a frame of slack on fps)."""
    return (
        info.codec == "h264"
        and 0 < info.width <= profile.width
        and 0 < info.height <= profile.height
        and 0 < info.fps <= profile.fps + 0.5
        and 0 < info.bitrate <= profile.bitrate
    )


# Pictures timed by their arrival: MJPEG over HTTP has no timestamps (FFmpeg invents 25 fps);
# MxPEG's are the camera's clock, which NTP may step back, or FFmpeg's 1 µs steps where a
# frame lacks its MXF header (docs/RECORDING.md, "Mobotix").
ARRIVAL_TIMED = {"mjpeg", "mxpeg"}


def source_format(url: str) -> str | None:
    """The demuxer a camera URL needs; None lets FFmpeg probe (RTSP, MPEG-TS, files).

    Mobotix /control/faststream.jpg: `stream=full` is multipart JPEG; `stream=MxPEG` (the
    firmware's default) is multipart MxPEG with audio, `stream=mxg` the same frames as a bare
    clip. FFmpeg detects neither MxPEG form over HTTP; its mxg demuxer reads both, as it looks
    only at JPEG markers and the multipart headers hold none.
    """
    parts = urlsplit(url)
    path = parts.path.lower()
    if "faststream" in path:
        stream = parse_qs(parts.query).get("stream", ["MxPEG"])[0]
        return "mpjpeg" if stream.lower() == "full" else "mxg"
    if "mjpg" in path or "mjpeg" in path:
        return "mpjpeg"
    return None


def url_with_credentials(url: str, username: str | None, password: str | None) -> str:
    parts = urlsplit(url)
    if not username or parts.username or not parts.scheme:
        return url
    userinfo = f"{quote(username, safe='')}:{quote(password or '', safe='')}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def source_open(url: str, *, timeout: float) -> av.container.InputContainer:
    """Open a camera URL or a file, with connect and read timeouts on every protocol."""
    scheme = urlsplit(url).scheme
    # Not fflags=nobuffer: it drops the packets read while probing, the first IDR among them,
    # and the first segment then waits a whole camera GOP longer.
    options: dict[str, str] = {}
    micros = str(int(timeout * 1_000_000))
    if scheme:
        # Cameras send their parameter sets up front: skipping FFmpeg's stream analysis
        # saves ~0.7 s of the first segment's wait (shared/notes/video-baselines.md).
        options |= {"analyzeduration": "0", "fpsprobesize": "0"}
    if scheme in ("rtsp", "rtsps"):
        # Cameras drop UDP on cellular and NAT paths; TCP interleaving always gets through.
        options |= {"rtsp_transport": "tcp", "timeout": micros}
    elif scheme in ("http", "https"):
        options |= {"rw_timeout": micros, "reconnect": "0"}
    demuxer = source_format(url)
    if demuxer == "mxg":
        # The demuxer declares an audio stream whatever the camera sends: without a
        # microphone (or with `noaudio`) the analysis would wait for it until the open
        # timeout, holding back the first pictures. Nothing in it is needed: the demuxer fixes
        # both codecs and the decoder reads the size from each picture.
        options["probesize"] = "32"
    try:
        # PyAV's own timeout interrupts any blocking read: a stalled camera cannot hang us.
        return av.open(url, format=demuxer, options=options, timeout=(timeout, timeout))
    except av.InvalidDataError as error:
        raise SourceError("The camera sent data that is not video.") from error
    except (av.FFmpegError, OSError) as error:
        raise SourceError("The camera did not answer.", error) from error


def fit(width: int, height: int, box: Profile) -> tuple[int, int]:
    """The largest even size within the profile's box that keeps the aspect; never upscaled."""
    scale = min(1.0, box.width / width, box.height / height)
    # Nearest even size (854×480 → 640×360), never past the box.
    even_w = min(box.width // 2 * 2, max(2, round(width * scale / 2) * 2))
    even_h = min(box.height // 2 * 2, max(2, round(height * scale / 2) * 2))
    return even_w, even_h


def packets(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    *,
    pace: bool,
    live: bool = False,
) -> Iterator[av.Packet]:
    """The stream's packets; paced to real time for files (cameras pace themselves).

    live: the end of the stream is an error (a camera never ends; a file does).
    """
    started = None
    try:
        for packet in container.demux(stream):
            if packet.dts is None:
                continue
            if pace and packet.pts is not None:
                # A demuxed stream always has a time base (the stubs allow None for encoders).
                at = float(packet.pts * stream.time_base)  # type: ignore[operator]
                started = started if started is not None else time.monotonic() - at
                time.sleep(max(0.0, started + at - time.monotonic()))
            yield packet
        if live:
            raise SourceError("The camera closed the stream.")
    except av.ExitError as error:
        raise SourceError("The camera stopped sending video.") from error
    except av.InvalidDataError as error:
        raise SourceError("The camera sent data that is not video.") from error
    except (av.FFmpegError, OSError) as error:
        raise SourceError("The camera connection failed.", error) from error


def hls_open(
    out_dir: Path, *, segment_seconds: int, list_size: int, start_number: int = 0
) -> av.container.Container:
    flags = "delete_segments+temp_file+independent_segments"
    # Resuming after a reconnect: carry on the numbering and mark the break for players.
    flags += "+discont_start" if start_number else ""
    return av.open(
        str(out_dir / PLAYLIST),
        "w",
        format="hls",
        options={
            "hls_time": str(segment_seconds),
            "hls_list_size": str(list_size),
            # Keep a few old segments for players holding the previous playlist.
            "hls_delete_threshold": "3",
            # temp_file: the playlist and each segment appear whole, by rename.
            "hls_flags": flags,
            "start_number": str(start_number),
            "hls_segment_filename": str(out_dir / SEGMENT_PATTERN),
        },
    )


def hls_write(
    url: str,
    out_dir: Path,
    *,
    profile: Profile | None,
    keep_going: Callable[[], bool],
    timeout: float,
    segment_seconds: int = 1,
    list_size: int = 6,
    pace: bool | None = None,
    start_number: int = 0,
    live: bool | None = None,
) -> StreamInfo:
    """Write a sliding-window HLS playlist from the source until keep_going() says stop.

    profile None remuxes the camera's H.264 untouched; list_size 0 keeps every segment.
    Raises SourceError when the source dies, stalls or sends garbage; the caller removes
    out_dir, or resumes with start_number=segment_next(out_dir).
    """
    if live is None:  # a recording read through concat: is not a camera, and ends
        live = urlsplit(url).scheme not in ("", "file")
    if pace is None:  # files are read in real time, like a camera; cameras pace themselves
        pace = not live
    with source_open(url, timeout=timeout) as source:
        if not source.streams.video:
            raise SourceError("The camera sent no video stream.")
        stream = source.streams.video[0]
        info = stream_info(stream)
        output = hls_open(
            out_dir,
            segment_seconds=segment_seconds,
            list_size=list_size,
            start_number=start_number,
        )
        try:
            if profile is None:
                _remux(source, stream, output, keep_going=keep_going, pace=pace, live=live)
            else:
                _transcode(
                    source,
                    stream,
                    output,
                    profile,
                    keep_going,
                    pace,
                    live,
                    segment_seconds,
                    timeout,
                )
        except SourceError as error:
            # Checked before close(): closing writes out whatever part-segment there is.
            error.streamed = (out_dir / PLAYLIST).exists()
            raise
        finally:
            output.close()
        return info


def segment_next(out_dir: Path) -> int:
    """The number after the last segment written, 0 if none."""
    numbers = [int(f.stem[3:]) for f in out_dir.glob("seg*.ts") if f.stem[3:].isdigit()]
    return max(numbers, default=-1) + 1


def playlist_reopen(out_dir: Path) -> None:
    """Take back the end mark a closing muxer wrote: the session goes on after a reconnect."""
    playlist = out_dir / PLAYLIST
    if playlist.exists():
        text = playlist.read_text().replace("#EXT-X-ENDLIST\n", "")
        scratch = out_dir / (PLAYLIST + ".reopen")
        scratch.write_text(text)
        scratch.replace(playlist)  # atomic: a fetch sees the old or the new, never half


def _remux(
    source, stream, output, *, keep_going: Callable[[], bool], pace: bool, live: bool
) -> None:
    if stream.codec_context.name != "h264":
        raise SourceError(f"The camera sends {stream.codec_context.name}, not H.264: transcode.")
    out_stream = output.add_stream_from_template(stream)
    started = False
    for packet in packets(source, stream, pace=pace, live=live):
        # Joining mid-GOP: a segment must start at a keyframe.
        started = started or packet.is_keyframe
        if started:
            packet.stream = out_stream
            output.mux(packet)
        if not keep_going():
            return


def encoder_add(output, profile: Profile, width: int, height: int, segment_seconds: int):
    gop = profile.fps * segment_seconds
    stream = output.add_stream(
        "libx264",
        rate=profile.fps,
        options={
            "preset": "veryfast",
            "tune": "zerolatency",
            "profile": "main",
            # Keyframes are forced at segment starts (below); no scene-cut extras.
            "g": str(gop * 2),
            "sc_threshold": "0",
            "forced-idr": "1",
            # MPEG-TS adds ~10% on the wire: aim below the cap.
            "b": str(int(profile.bitrate * 0.8)),
            "maxrate": str(int(profile.bitrate * 0.8)),
            "bufsize": str(profile.bitrate),
            "threads": "1",
        },
    )
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.time_base = Fraction(1, profile.fps)
    return stream


def _transcode(source, stream, output, profile, keep_going, pace, live, segment_seconds, timeout):
    decoder = stream.codec_context
    decoder.thread_type, decoder.thread_count = "SLICE", 1
    encoder = None  # made at the first picture: MJPEG and MxPEG tell their size only then
    gop = profile.fps * segment_seconds
    # The frames' clock: the output stream's own time base turns 1/90000 once muxing starts.
    rate = Fraction(1, profile.fps)
    wallclock = decoder.name in ARRIVAL_TIMED
    first = last = None
    last_picture = time.monotonic()
    for packet in packets(source, stream, pace=pace, live=live):
        try:
            frames = decoder.decode(packet)
        except av.FFmpegError:
            frames = []  # one broken packet is normal on a lossy link; a run of them is not
        for frame in frames:
            last_picture = time.monotonic()
            wall = wallclock or frame.time is None
            seconds = time.monotonic() if wall else float(frame.time)
            first = seconds if first is None else first
            # Floor, not round: round() picks uneven frames (video-baselines.md).
            index = math.floor((seconds - first) * profile.fps + 1e-6)
            if last is not None and index <= last:
                continue
            if encoder is None:
                width, height = fit(frame.width, frame.height, profile)
                encoder = encoder_add(output, profile, width, height, segment_seconds)
            picture = frame.reformat(width, height, format="yuv420p", interpolation="AREA")
            picture.pts, picture.time_base = index, rate
            new_segment = last is None or index // gop != last // gop
            # Without the reset x264 would copy the camera's own picture types.
            picture.pict_type = PictureType.I if new_segment else PictureType.NONE
            last = index
            for out in encoder.encode(picture):
                output.mux(out)
        if time.monotonic() - last_picture > timeout:
            raise SourceError("The camera sends data but no pictures.")
        if not keep_going():
            break
    for out in encoder.encode(None) if encoder else []:
        output.mux(out)


def stream_info(stream: av.VideoStream) -> StreamInfo:
    context = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate or 0
    return StreamInfo(
        codec=context.name,
        width=context.width,
        height=context.height,
        fps=round(float(rate), 2),
        bitrate=int(context.bit_rate or stream.bit_rate or 0),
    )


def source_probe(url: str, *, timeout: float, seconds: float = 2.0) -> StreamInfo:
    """Read a few seconds of the stream: codec, size, frame rate and measured bitrate."""
    with source_open(url, timeout=timeout) as source:
        if not source.streams.video:
            raise SourceError("The camera sent no video stream.")
        stream = source.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        size, first, last, count, pictures = 0, None, None, 0, 0
        started = time.monotonic()
        for packet in packets(source, stream, pace=False):
            size += packet.size
            count += 1
            if stream.codec_context.name in ARRIVAL_TIMED or packet.pts is None:
                at = time.monotonic()
            else:
                at = float(packet.pts * stream.time_base)  # type: ignore[operator]
            first = at if first is None else first
            last = at if at is not None else last
            with contextlib.suppress(av.FFmpegError):
                pictures += len(stream.codec_context.decode(packet))
            span = (last - first) if first is not None and last is not None else 0
            if span >= seconds or time.monotonic() - started > seconds + timeout:
                break
        if not pictures:
            raise SourceError("The camera sent no picture that decodes.")
        info = stream_info(stream)
        span = (last - first) if first is not None and last is not None else 0
        measured = round((count - 1) / span, 2) if span else 0.0
        # Measured, not declared: without stream analysis FFmpeg's guess is often wrong.
        fps = measured or info.fps
        bitrate = int(size * 8 / span) if span else info.bitrate
        return StreamInfo(info.codec, info.width, info.height, fps, bitrate)


def snapshot_grab(url: str, *, timeout: float, max_width: int = 640, quality: int = 70) -> bytes:
    """A small JPEG from the first keyframe: only keyframes are decoded at all."""
    with source_open(url, timeout=timeout) as source:
        if not source.streams.video:
            raise SourceError("The camera sent no video stream.")
        stream = source.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        started = time.monotonic()
        for packet in packets(source, stream, pace=False):
            try:
                frames = stream.codec_context.decode(packet)
            except av.FFmpegError:
                frames = []
            if frames:
                image = frames[0].to_image()
                image.thumbnail((max_width, max_width))
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=quality)
                return buffer.getvalue()
            if time.monotonic() - started > timeout:
                break
        raise SourceError("The camera sent no keyframe.")
