import time

import av
import pytest

from responder.demo.simulate import GLYPHS, clock_box, clock_text

READ = {rows: char for char, rows in GLYPHS.items()}


def clock_read(frame: av.VideoFrame) -> float:
    """The wall-clock time burned into a frame, in seconds of the day."""
    x, y, _, _ = clock_box(frame.width, frame.height)
    unit, plane = x, frame.planes[0]
    luma = bytes(plane)

    def lit(column: int, row: int) -> bool:
        px, py = x + column * unit + unit // 2, y + (row + 1) * unit + unit // 2
        return luma[py * plane.line_size + px] > 128

    text = "".join(
        READ[
            tuple(
                "".join("1" if lit(1 + i * 4 + c, r) else "0" for c in range(3)) for r in range(5)
            )
        ]
        for i in range(len(clock_text(0)))
    )
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def frames_of(url: str, count: int) -> list[av.VideoFrame]:
    with av.open(url, format="mpjpeg" if "mjpeg" in url else None, timeout=(10, 10)) as camera:
        frames = []
        for frame in camera.decode(video=0):
            frames.append(frame.reformat(format="yuv420p"))
            if len(frames) == count:
                return frames
    raise AssertionError("the camera ended")


def seconds_of_day(at: float) -> float:
    local = time.localtime(at)
    return local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec + at % 1


@pytest.mark.parametrize(
    ("path", "fps"),
    [
        ("/door/video.ts?size=426x240&fps=10&kbps=300&gop=10", 10),
        ("/hall/mjpeg?size=320x180&fps=5", 5),
    ],
)
def test_its_frames_show_the_current_time_a_second_apart(camera_server, path, fps):
    frames = frames_of(camera_server + path, fps + 1)
    now = seconds_of_day(time.time())

    first, later = frames[0], frames[fps]
    x, y, width, height = clock_box(first.width, first.height)
    assert clock_read(later) - clock_read(first) == pytest.approx(1.0, abs=0.3)
    assert abs(clock_read(later) - now) < 5  # the time of day, not the stream's running time
    box = [
        bytes(f.planes[0])[(y + line) * f.planes[0].line_size + x :][:width]
        for f in (first, later)
        for line in range(height)
    ]
    assert box[:height] != box[height:]
