"""Recording: `manage.py record` against `ffmpeg -c copy -f segment` on the same sources.

    .venv/bin/python -m bench.record [--streams 20] [--seconds 30] [--size 1920x1080]
                                     [--fps 30] [--kbps 2000] [--codec h264] [--no-ffmpeg]
                                     [--mjpeg 0] [--mjpeg-size 1280x720] [--mjpeg-fps 10]

Both record the same N loop cameras (cameras/loopcam.py: one clip encoded once, muxed
once, sent to every client), one after the other, in the same run. CPU is user + system
time of the recorder process (or of the N ffmpeg processes) only, over the same steady
window of --seconds after every stream has started; the cameras' server is not counted.
Then: RSS per camera, bytes written, gaps in the index (0 expected) and every segment's
SHA-256 checked against its file; and where a packet's CPU goes (demux, mux, hash + write +
fsync), timed in this process over the clip read from a file.

DATABASE_URL (a database of its own: it migrates and empties it, then adds cameras) or SQLite
in a temporary folder; REDIS_URL or an embedded Redis. Imports tests.factories (dev
dependencies). Needs Debian's ffmpeg for the reference (bin/system-packages bench).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

from bench.common import bench_services, calibration

ROOT = Path(__file__).resolve().parents[2]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def cpu_seconds(pid: int) -> float:
    return sum(cpu_split(pid))


def rss_bytes(pid: int) -> int:
    return status_field(pid, "VmRSS") * 1024


def status_field(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    return 0


def tree_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*.ts*") if p.is_file())


def steady_cpu(pids: list[int], seconds: float) -> float:
    before = sum(cpu_seconds(p) for p in pids)
    time.sleep(seconds)
    return sum(cpu_seconds(p) for p in pids) - before


def recorder_timeline(pid: int, seconds: float, every: float = 15) -> list[dict]:
    """The recorder every `every` seconds of the window: CPU (user, system) used since the
    last sample, as cores; RSS; threads; the load average. A run whose CPU or RSS climbs
    shows it here, not only in the totals."""
    rows, started = [], time.monotonic()
    last = cpu_split(pid)
    while (elapsed := time.monotonic() - started) < seconds:
        step = min(every, seconds - elapsed)
        time.sleep(step)
        user, system = cpu_split(pid)
        rows.append({
            "t": round(time.monotonic() - started),
            "user_cores": round((user - last[0]) / step, 2),
            "system_cores": round((system - last[1]) / step, 2),
            "rss_mib": rss_bytes(pid) >> 20,
            "threads": status_field(pid, "Threads"),
            "load": os.getloadavg()[0],
        })  # fmt: skip
        last = (user, system)
    return rows


def phase_ffmpeg(urls: list[str], out: Path, seconds: float, warmup: float) -> dict:
    processes = []
    for index, url in enumerate(urls):
        folder = out / str(index)
        folder.mkdir(parents=True)
        command = [
            "ffmpeg", "-nostdin", "-loglevel", "error", "-i", url, "-map", "0:v", "-c", "copy",
            "-f", "segment", "-segment_time", "60", "-segment_format", "mpegts",
            str(folder / "%05d.ts"),
        ]  # fmt: skip
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
    try:
        time.sleep(warmup)
        written_before = tree_bytes(out)
        cpu = steady_cpu([p.pid for p in processes], seconds)
        written = tree_bytes(out) - written_before
        rss = sum(rss_bytes(p.pid) for p in processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)
    return {"cpu_s": round(cpu, 2), "bytes": written, "rss_bytes": rss}


def phase_recorder(urls: list[str], root: Path, seconds: float, warmup: float) -> dict:
    from cameras.models import Camera
    from responder.recording.models import Gap, Segment
    from tests.factories import CameraFactory

    cameras = [CameraFactory(name=f"bench {i}", main_stream_url=url) for i, url in enumerate(urls)]
    env = {**os.environ, "RECORDINGS_ROOT": str(root), "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "manage.py", "record", "--name", "bench"]
    recorder = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 120
        while len(list(root.glob("*/*/*.partial"))) < len(urls):
            if time.monotonic() > deadline or recorder.poll() is not None:
                raise SystemExit("the recorder did not start every camera")
            time.sleep(0.5)
        time.sleep(warmup)
        written_before = tree_bytes(root)
        user_before, system_before = cpu_split(recorder.pid)
        timeline = recorder_timeline(recorder.pid, seconds)
        user, system = cpu_split(recorder.pid)
        user, system = user - user_before, system - system_before
        written = tree_bytes(root) - written_before
        rss = rss_bytes(recorder.pid)
    finally:
        recorder.terminate()
        recorder.wait(60)
    segments = list(Segment.objects.filter(camera__in=cameras))
    bad = [s.path for s in segments if _sha256(root / s.path) != s.sha256]
    # Gaps other than the open "stopped" each camera gets when the recorder is stopped.
    gaps = Gap.objects.filter(camera__in=cameras).exclude(reason="stopped", end__isnull=True)
    result = {
        "cpu_s": round(user + system, 2),
        "cpu_user_s": round(user, 2),
        "cpu_system_s": round(system, 2),
        "timeline": timeline,
        "bytes": written,
        "rss_bytes": rss,
        "segments": len(segments),
        "segments_bad_hash": bad,
        "gaps": [(g.camera_id, g.reason, g.detail) for g in gaps],
    }
    Segment.objects.filter(camera__in=cameras).delete()
    Camera.objects.filter(pk__in=[c.pk for c in cameras]).delete()
    return result


def phase_mjpeg(args: argparse.Namespace, work: Path) -> dict:
    """MJPEG cameras (the simulator's live MJPEG, one shared encode): the recorder
    transcodes each to H.264 at its size; its CPU per camera."""
    from responder.demo.simulate import simulator_running

    query = f"size={args.mjpeg_size}&fps={args.mjpeg_fps}"
    with simulator_running(seconds=30) as base:
        urls = [f"{base}/m{i}/mjpeg?{query}" for i in range(args.mjpeg)]
        result = phase_recorder(urls, work / "mjpeg", args.seconds, args.warmup)
    result["cpu_per_camera_percent"] = round(100 * result["cpu_s"] / args.seconds / args.mjpeg, 1)
    result["source"] = f"MJPEG {args.mjpeg_size} at {args.mjpeg_fps} fps"
    return result


def phase_breakdown(server, args: argparse.Namespace, work: Path, rounds: int = 10) -> dict:
    """CPU per packet of each stage of the recorder's loop, in this process, on the clip."""
    from cameras.loopcam import _Sink
    from responder.recording import writer

    width, height = (int(n) for n in args.size.split("x"))
    loop = server.loop(args.codec, width, height, args.fps, args.kbps, 10)
    clip = work / "clip.ts"
    with av.open(str(clip), "w", format="mpegts") as output:
        stream = output.add_stream(args.codec, rate=args.fps)
        stream.width, stream.height = width, height
        for payload, pts, key in loop.clip:
            packet = av.Packet(payload)
            packet.pts = packet.dts = pts
            packet.time_base, packet.stream = Fraction(1, args.fps), stream
            packet.is_keyframe = key
            output.mux(packet)

    def run(stage: str) -> float:
        started, count = time.process_time(), 0
        for round_ in range(rounds):
            with av.open(str(clip)) as source:
                stream = source.streams.video[0]
                if stage == "demux":
                    out = None
                elif stage == "mux":
                    out = av.open(_Sink(), "w", format="mpegts", options={"flush_packets": "1"})
                    target = out.add_stream_from_template(stream)
                else:
                    segment = writer.segment_open(
                        root=work / "breakdown", camera_id=round_, recorder="bench",
                        template=stream, codec=args.codec, width=width, height=height,
                        time_base=stream.time_base, first_pts=0, start_wall=time.time(),
                    )  # fmt: skip
                for packet in source.demux(stream):
                    if packet.dts is None:
                        continue
                    count += 1
                    if stage == "mux":
                        packet.stream = target
                        out.mux(packet)
                    elif stage == "write":
                        segment.write(packet, packet.pts, packet.is_keyframe)
                if stage == "mux":
                    out.close()
                elif stage == "write":
                    segment.close()
        return (time.process_time() - started) / count * 1e6

    demux, mux, write = run("demux"), run("mux"), run("write")
    return {
        "us_per_packet_demux": round(demux, 1),
        "us_per_packet_mux_added": round(mux - demux, 1),
        "us_per_packet_hash_write_fsync_added": round(write - mux, 1),
        "us_per_packet_total": round(write, 1),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.record")
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--kbps", type=int, default=2000)
    parser.add_argument("--codec", default="h264", choices=["h264", "hevc"])
    parser.add_argument("--no-ffmpeg", action="store_true")
    parser.add_argument(
        "--mjpeg", type=int, default=0, help="Also: this many MJPEG cameras, transcoded."
    )
    parser.add_argument("--mjpeg-size", default="1280x720")
    parser.add_argument("--mjpeg-fps", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-record-"))
    try:
        with bench_services(work):
            print(json.dumps(run(args, work), indent=2))  # noqa: T201
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> dict:
    import django

    django.setup()
    from django.core.management import call_command

    from cameras.loopcam import loop_server_running

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    result: dict = {"calibration_ms": round(calibration(), 1), "args": vars(args)}
    with loop_server_running() as server:
        query = f"codec={args.codec}&size={args.size}&fps={args.fps}&kbps={args.kbps}"
        urls = [
            f"http://127.0.0.1:{server.server_port}/cam{i}/video.ts?{query}"
            for i in range(args.streams)
        ]
        width, height = (int(n) for n in args.size.split("x"))
        started = time.monotonic()
        server.loop(args.codec, width, height, args.fps, args.kbps, 10)  # the one encode
        result["clip_encode_s"] = round(time.monotonic() - started, 1)
        if not args.no_ffmpeg:
            result["ffmpeg"] = phase_ffmpeg(urls, work / "ffmpeg", args.seconds, args.warmup)
            shutil.rmtree(work / "ffmpeg", ignore_errors=True)
        result["recorder"] = phase_recorder(urls, work / "recordings", args.seconds, args.warmup)
        result["breakdown"] = phase_breakdown(server, args, work)
    if args.mjpeg:
        result["mjpeg"] = phase_mjpeg(args, work)
    recorder = result["recorder"]
    per = args.streams * args.seconds
    recorder["cpu_per_stream_percent"] = round(100 * recorder["cpu_s"] / per, 2)
    recorder["rss_per_camera_mib"] = round(recorder["rss_bytes"] / args.streams / 2**20, 1)
    recorder["mbps_written"] = round(recorder["bytes"] * 8 / args.seconds / 1e6, 1)
    recorder["cores_for_150"] = round(recorder["cpu_s"] / per * 150, 2)
    if "ffmpeg" in result:
        ffmpeg = result["ffmpeg"]
        ffmpeg["cpu_per_stream_percent"] = round(100 * ffmpeg["cpu_s"] / per, 2)
        ffmpeg["mbps_written"] = round(ffmpeg["bytes"] * 8 / args.seconds / 1e6, 1)
        result["ratio_recorder_over_ffmpeg"] = round(recorder["cpu_s"] / ffmpeg["cpu_s"], 2)
    return result


if __name__ == "__main__":
    main()
