"""Mobotix cameras: each faststream.jpg stream type opened as its framing needs.

The camera is the simulator's (responder/demo/simulate.py, whose docstring cites Mobotix's
documentation and FFmpeg's demuxer and decoder for what it sends).
"""

import time

import av
import pytest

from cameras import media
from tests.cameras.test_simulate import clock_read, seconds_of_day

FASTSTREAM = "/control/faststream.jpg"


@pytest.mark.parametrize(
    ("url", "demuxer"),
    [
        ("http://cam/control/faststream.jpg?stream=mxg&fps=5", "mxg"),
        ("http://cam/control/faststream.jpg?stream=MxPEG&needlength", "mxg"),
        ("http://cam/cgi-bin/faststream.jpg?fps=5", "mxg"),  # the firmware's default: MxPEG
        ("http://cam/control/faststream.jpg?stream=full&fps=5", "mpjpeg"),
        ("http://cam/control/faststream.jpg?stream=FULL", "mpjpeg"),
        ("http://cam/axis-cgi/mjpg/video.cgi", "mpjpeg"),
        ("http://cam/door/mjpeg?size=320x240", "mpjpeg"),
        ("rtsp://cam:554/stream0/mobotix.h264", None),
        ("http://cam/cam/video.ts", None),
    ],
)
def test_each_url_is_opened_with_the_demuxer_its_framing_needs(url, demuxer):
    assert media.source_format(url) == demuxer


def pictures(url: str, count: int) -> tuple[str, list[tuple[av.VideoFrame, av.VideoFrame | None]]]:
    """The stream's decoder name, and `count` pictures it decoded, each with what FFmpeg's
    plain JPEG decoder makes of the same packet (None: it cannot, a frame of tiles)."""
    jpeg = av.CodecContext.create("mjpeg", "r")
    found = []
    with media.source_open(url, timeout=5) as source:
        stream = source.streams.video[0]
        for packet in media.packets(source, stream, pace=False, live=True):
            for frame in stream.codec_context.decode(packet):
                try:
                    (plain,) = jpeg.decode(av.Packet(bytes(packet)))
                except av.InvalidDataError:
                    plain = None
                found.append(
                    (frame.reformat(format="yuv420p"), plain and plain.reformat(format="yuv420p"))
                )
            if len(found) == count:
                return stream.codec_context.name, found
    raise AssertionError("the camera ended")


def lines(frame: av.VideoFrame, first: int, last: int) -> bytes:
    plane = frame.planes[0]
    return bytes(plane)[first * plane.line_size : last * plane.line_size]


@pytest.mark.parametrize("query", ["stream=mxg", "stream=MxPEG", "stream=MxPEG&noaudio", "fps=5"])
def test_mxpeg_decodes_whole_frames_and_lays_tiles_on_the_last_picture(camera_server, query):
    url = f"{camera_server}/gate{FASTSTREAM}?{query}&size=320x240"
    tiled = 32  # the simulator's tiles: the two rows of them that hold the clock at 320×240

    decoder, decoded = pictures(url, 6)

    assert decoder == "mxpeg"
    assert 0 < sum(plain is None for _, plain in decoded) < len(decoded)
    previous = None
    for mxpeg, plain in decoded:
        assert (mxpeg.width, mxpeg.height) == (320, 240)
        if plain is not None:  # a whole frame: exactly the JPEG
            for ours, theirs in zip(mxpeg.planes, plain.planes, strict=True):
                assert bytes(ours) == bytes(theirs)
        else:  # new tiles where they were sent, the previous picture elsewhere
            assert previous is not None
            assert lines(mxpeg, 0, tiled) != lines(previous, 0, tiled)
            assert lines(mxpeg, tiled, 240) == lines(previous, tiled, 240)
        previous = mxpeg
    clocks = [clock_read(mxpeg) for mxpeg, _ in decoded]  # readable in tiles too
    assert clocks == sorted(clocks)
    assert clocks[-1] - clocks[0] == pytest.approx(1.0, abs=0.3)  # 5 fps
    assert abs(clocks[-1] - seconds_of_day(time.time())) < 5


def test_full_is_multipart_jpeg(camera_server):
    url = f"{camera_server}/gate{FASTSTREAM}?stream=full&size=320x240&fps=5"

    decoder, decoded = pictures(url, 2)

    assert decoder == "mjpeg"
    assert all(plain is not None for _, plain in decoded)
    assert (decoded[0][0].width, decoded[0][0].height) == (320, 240)


def test_the_clip_carries_the_cameras_times_and_its_audio_as_ffmpeg_reads_them(camera_server):
    url = f"{camera_server}/gate{FASTSTREAM}?stream=mxg&size=320x240&fps=5"
    video, audio = [], []

    with media.source_open(url, timeout=5) as source:
        assert source.streams.audio[0].codec_context.name == "pcm_alaw"
        for packet in source.demux():
            stream = packet.stream
            if packet.dts is not None:
                (video if stream.type == "video" else audio).append(
                    float(packet.pts * stream.time_base)
                )
            if len(video) >= 6 and audio:
                break

    now = time.time()
    assert all(now - 10 < at <= now for at in video + audio)  # the MXF and APP13 times
    steps = [later - earlier for earlier, later in zip(video, video[1:], strict=False)]
    assert sum(steps) / len(steps) == pytest.approx(0.2, abs=0.05)


def test_health_probe_and_snapshot_read_an_mxpeg_camera(camera_server):
    url = f"{camera_server}/gate{FASTSTREAM}?stream=mxg&size=320x240&fps=5"

    info = media.source_probe(url, timeout=5)
    snapshot = media.snapshot_grab(url, timeout=5)

    assert (info.codec, info.width, info.height) == ("mxpeg", 320, 240)
    assert info.fps == pytest.approx(5, abs=0.5)
    assert snapshot.startswith(b"\xff\xd8")
