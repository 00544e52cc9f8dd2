"""Live-video transcoding: the project's PyAV pipeline (cameras/media.py) against the ffmpeg CLI.

    .venv/bin/python -m bench.transcode [--seconds 10] [--pairs 3] [--sessions 4 5 6 7]
                                        [--remux 40]
                                        [--only cpu,profiles,startup,http,realtime,remux,threads]

The http phase needs DATABASE_URL (a database of its own: it migrates and empties it, then adds a
user and cameras) and REDIS_URL, and imports tests.factories (dev dependencies).

Needs Debian's ffmpeg for the reference (`apt-get install -y ffmpeg`). Every phase is
bounded; each session is its own process, one thread each, as on a video worker.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from fractions import Fraction
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
GOP_SECONDS = 1
SOURCE_FPS = 30


def source_make(path: Path, *, seconds: int, size: str = "1920x1080", fps: int = 30) -> Path:
    """A camera-like 1080p30 H.264 source at ~4.5 Mbps, 1 s GOP, no B-frames."""
    if path.exists():
        return path
    width, height = (int(n) for n in size.split("x"))
    with av.open(str(path), "w", format="mpegts") as output:
        stream = output.add_stream(
            "libx264",
            rate=fps,
            options={
                "preset": "veryfast",
                "g": str(fps * GOP_SECONDS),
                "sc_threshold": "0",
                "bf": "0",
                "b": "4500000",
                "maxrate": "5000000",
                "bufsize": "5000000",
            },
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        source = av.open(f"testsrc2=size={size}:rate={fps}:duration={seconds}", format="lavfi")
        with source:
            for index, frame in enumerate(source.decode(video=0)):
                frame.pts, frame.time_base = index, Fraction(1, fps)
                output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return path


def pyav_command(source: Path, out: Path, profile: str, *, pace: bool, list_size: int) -> list:
    # Prints the seconds hls_write took, start-up (imports) excluded.
    code = (
        "import time; from pathlib import Path; from cameras import media;"
        "started = time.monotonic();"
        f"media.hls_write({str(source)!r}, Path({str(out)!r}),"
        f" profile=media.PROFILES.get({profile!r}), keep_going=lambda: True, timeout=10,"
        f" pace={pace}, list_size={list_size});"
        "print(time.monotonic() - started)"
    )
    return [PY, "-c", code]


def ffmpeg_command(source: Path, out: Path, profile: str) -> list:
    from cameras.media import PROFILES

    p = PROFILES[profile]
    rate = int(p.bitrate * 0.8)
    # The same work as cameras/media.py: one thread each, drop fps first, area scaling,
    # veryfast + zerolatency, a forced IDR every second, the same rate control.
    return [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-i", str(source),
        "-vf", f"fps={p.fps},scale={p.width}:{p.height}:flags=area",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "main",
        "-b:v", str(rate), "-maxrate", str(rate), "-bufsize", str(p.bitrate),
        "-g", str(p.fps * 2), "-sc_threshold", "0", "-forced-idr", "1",
        "-force_key_frames", "expr:gte(t,n_forced*1)", "-x264-params", "threads=1",
        "-filter_threads", "1", "-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
        "-hls_segment_filename", str(out / "seg%d.ts"), str(out / "index.m3u8"),
    ]  # fmt: skip


def cpu_of(command: list, cwd: Path = ROOT) -> float:
    """CPU seconds (user + system) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        command,
        cwd=cwd,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fresh(directory: Path) -> Path:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def phase_cpu(source: Path, work: Path, pairs: int, seconds: int) -> dict:
    pyav, cli = [], []
    for _ in range(pairs):
        out = fresh(work / "cpu")
        pyav.append(cpu_of(pyav_command(source, out, "medium", pace=False, list_size=0)))
        out = fresh(work / "cpu")
        cli.append(cpu_of(ffmpeg_command(source, out, "medium")))
    return {
        "pyav_cpu_s": [round(x, 2) for x in pyav],
        "ffmpeg_cpu_s": [round(x, 2) for x in cli],
        "pyav_cpu_per_video_s": round(statistics.median(pyav) / seconds, 3),
        "ratio_ffmpeg_over_pyav": round(
            statistics.median(c / p for c, p in zip(cli, pyav, strict=True)), 3
        ),
    }


def video_bits(path: Path) -> tuple[int, int, float]:
    """Payload bits, file bits and duration of an HLS playlist's segments."""
    payload = wire = 0
    duration = 0.0
    for line in (path / "index.m3u8").read_text().splitlines():
        if line.startswith("#EXTINF:"):
            duration += float(line[8:].split(",")[0])
        elif line.endswith(".ts"):
            wire += (path / line).stat().st_size * 8
            with av.open(str(path / line)) as container:
                payload += sum(p.size for p in container.demux(video=0)) * 8
    return payload, wire, duration


def ssim(out: Path, source: Path, profile: str) -> float:
    from cameras.media import PROFILES

    p = PROFILES[profile]
    # media.py's floor test keeps source frames 0, step, 2·step…; the fps filter would pick
    # others (3n+1 at 30→10), which costs SSIM for nothing but misalignment.
    step = SOURCE_FPS // p.fps
    graph = (
        f"[0:v]setpts=N/{p.fps}/TB[out];"
        f"[1:v]select='not(mod(n\\,{step}))',setpts=N/{p.fps}/TB,"
        f"scale={p.width}:{p.height}:flags=area[ref];"
        "[out][ref]ssim"
    )
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-i", str(out / "index.m3u8"), "-i", str(source),
         "-lavfi", graph, "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = [x for x in result.stderr.splitlines() if "SSIM" in x and "All:" in x][-1]
    return float(line.split("All:")[1].split()[0])


def phase_profiles(source: Path, work: Path) -> dict:
    results = {}
    for profile in ("low", "medium", "high", "source"):
        out = fresh(work / profile)
        name = None if profile == "source" else profile
        command = pyav_command(source, out, name or "", pace=False, list_size=0)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        payload, wire, duration = video_bits(out)
        results[profile] = {
            "video_kbps": round(payload / duration / 1000, 1),
            "wire_kbps": round(wire / duration / 1000, 1),
            "ssim": ssim(out, source, profile) if name else None,
        }
    return results


def phase_startup(work: Path, trials: int) -> dict:
    """Camera (simulated, 1080p30, 1 s GOP, paced) -> first medium segment on disk."""
    server = subprocess.Popen(
        [PY, "manage.py", "simulate_cameras", "--port", "0", "--seconds", "4"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = server.stdout.readline().split(" on ")[1].strip()
        url = f"{base}bench/video.ts?size=1920x1080&fps=30&kbps=4500&gop=30"
        warm = av.open(url, timeout=(30, 30))  # the simulator encodes its loop on first use
        next(warm.demux(video=0))
        warm.close()
        from cameras import media

        times = []
        for trial in range(trials):
            time.sleep(0.37 * (trial + 1))
            out = fresh(work / "startup")
            done = threading.Event()
            # In a warm process, as in a video worker: PyAV's import is not the camera's fault.
            session = threading.Thread(
                target=media.hls_write,
                args=(url, out),
                kwargs={
                    "profile": media.PROFILES["medium"],
                    "keep_going": lambda done=done: not done.is_set(),
                    "timeout": 10,
                },
            )
            started = time.monotonic()
            session.start()
            while not (out / "index.m3u8").exists():
                time.sleep(0.01)
            times.append(round(time.monotonic() - started, 2))
            done.set()
            session.join()
        return {"seconds": times, "median": statistics.median(times)}
    finally:
        server.terminate()
        server.wait()


def phase_http(work: Path, trials: int) -> dict:
    """POST /live -> playlist -> first segment fetched, over real HTTP: daphne, a prefork
    video worker and a simulated camera (1080p30, 1 s GOP, already streaming), each trial a
    camera with no session yet. Uses DATABASE_URL (emptied here) and REDIS_URL."""
    import django

    django.setup()
    from responder.core.redis import redis_client
    from tests.factories import PASSWORD, CameraFactory, GrantFactory, UserFactory
    from tests.signin_helpers import code_for, usable_device

    r = redis_client()

    # Factories number their rows from 1 in each run: start from an empty database.
    for command in (["migrate"], ["flush"]):
        subprocess.run([PY, "manage.py", *command, "--noinput", "-v0"], cwd=ROOT, check=True)
    env = {**os.environ, "LIVE_ROOT": str(fresh(work / "http_live")), "LIVE_IDLE_SECONDS": "5"}
    port = _free_port()
    servers = [
        subprocess.Popen(
            [PY, "manage.py", "simulate_cameras", "--port", "0", "--seconds", "60"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        ),
        subprocess.Popen(
            [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "responder.asgi:application"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [PY, "-m", "celery", "-A", "responder", "worker", "-Q", "video", "--pool", "prefork",
             "--concurrency", "2", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
    ]  # fmt: skip
    try:
        base = servers[0].stdout.readline().split(" on ")[1].strip()
        stream = f"{base}cam/video.ts?size=1920x1080&fps=30&kbps=4500&gop=30"
        camera = av.open(stream, timeout=(30, 30))  # keeps the camera's encoder running
        next(camera.demux(video=0))
        site = f"http://127.0.0.1:{port}"
        _http_wait(site)
        user = UserFactory()
        GrantFactory(user=user, capabilities=["live"])
        cookies = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
        signed_in = _json_post(
            opener,
            f"{site}/api/v1/auth/login",
            {
                "username": user.username,
                "password": PASSWORD,
                "otp": code_for(usable_device(user)),
            },
        )
        headers = {"X-CSRFToken": signed_in["csrf_token"], "Referer": site}
        posts, totals = [], []
        for trial in range(trials + 1):  # the first starts the worker's processes: not counted
            time.sleep(0.37 * (trial + 1))
            target = CameraFactory(main_stream_url=f"{base}t{trial}/video.ts?size=1920x1080"
                                   "&fps=30&kbps=4500&gop=30")  # fmt: skip
            started = time.monotonic()
            body = _json_post(
                opener, f"{site}/api/v1/cameras/{target.pk}/live", {"profile": "medium"}, headers
            )
            answered = time.monotonic()
            playlist_url = body["playlist"]
            playlist = urllib.request.urlopen(playlist_url, timeout=30).read().decode()
            segment = next(line for line in playlist.splitlines() if line and line[0] != "#")
            data = urllib.request.urlopen(
                urllib.parse.urljoin(playlist_url, segment), timeout=30
            ).read()
            assert data[:1] == b"G", "not an MPEG-TS segment"
            if trial:
                posts.append(round(answered - started, 2))
                totals.append(round(time.monotonic() - started, 2))
            # The viewer leaves; the next trial gets a free worker, as a lone alarm would.
            r.delete(f"live:{target.pk}:medium:lease")
            while r.exists(f"live:{target.pk}:medium:lock"):
                time.sleep(0.05)
        camera.close()
        return {
            "post_seconds": posts,
            "to_first_segment_seconds": totals,
            "median": statistics.median(totals),
        }
    finally:
        for server in servers:
            server.terminate()
            server.wait(30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http_wait(url: str) -> None:
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/manifest.webmanifest", timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("daphne did not start")


def _json_post(opener, url: str, data: dict, headers: dict | None = None) -> dict:
    request = urllib.request.Request(
        url,
        json.dumps(data).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )
    with opener.open(request, timeout=60) as response:
        return json.loads(response.read())


def phase_realtime(source: Path, work: Path, counts: list[int], profile: str | None) -> dict:
    """N paced sessions at once: each must finish within its video's length + 1.5 s."""

    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        length = float(stream.duration * stream.time_base)
    results = {}
    for count in counts:
        outs = [fresh(work / f"rt{i}") for i in range(count)]
        started = time.monotonic()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        procs = [
            subprocess.Popen(
                pyav_command(source, out, profile or "", pace=True, list_size=6),
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=subprocess.PIPE,
                text=True,
            )
            for out in outs
        ]
        elapsed = [float(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        lag = max(elapsed) - length
        results[count] = {
            "worst_lag_s": round(lag, 2),
            "cpu_s_per_session_per_video_s": round(cpu / count / length, 3),
            "cores_busy_incl_startup": round(cpu / wall, 2),
            "kept_up": lag <= 1.5,
        }
        print(profile or "source", count, results[count], flush=True)
        if lag > 1.5:
            break
    return results


def phase_threads(source: Path, work: Path, counts: list[int], profile: str | None) -> dict:
    """N paced sessions as threads of one process, as in a `--pool threads` video worker."""
    from cameras import media

    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        length = float(stream.duration * stream.time_base)
    results = {}
    for count in counts:
        elapsed: list[float] = []

        def session(out: Path, elapsed: list[float] = elapsed) -> None:
            started = time.monotonic()
            media.hls_write(
                str(source),
                out,
                profile=media.PROFILES.get(profile or ""),
                keep_going=lambda: True,
                timeout=10,
                pace=True,
            )
            elapsed.append(time.monotonic() - started)

        threads = [
            threading.Thread(target=session, args=(fresh(work / f"th{i}"),)) for i in range(count)
        ]
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        lag = max(elapsed) - length
        results[count] = {
            "worst_lag_s": round(lag, 2),
            "cpu_s_per_session_per_video_s": round(cpu / count / length, 4),
            "cores_busy": round(cpu / wall, 2),
            "kept_up": lag <= 1.5,
        }
        print("threads", profile or "source", count, results[count], flush=True)
        if lag > 1.5:
            break
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--sessions", type=int, nargs="+", default=[4, 5, 6, 7])
    parser.add_argument("--remux", type=int, nargs="+", default=[40])
    parser.add_argument("--only", default="cpu,profiles,startup,http,realtime,remux")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "bench_transcode"))
    args = parser.parse_args()
    if not shutil.which("ffmpeg"):
        sys.exit("The reference needs Debian's ffmpeg: apt-get install -y ffmpeg")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "responder.settings")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    source = source_make(work / f"source_{args.seconds}s.ts", seconds=args.seconds)
    phases = set(args.only.split(","))
    report: dict = {"pyav": av.__version__, "ffmpeg_lib": av.ffmpeg_version_info}
    if "cpu" in phases:
        report["cpu"] = phase_cpu(source, work, args.pairs, args.seconds)
        print("cpu", report["cpu"], flush=True)
    if "profiles" in phases:
        report["profiles"] = phase_profiles(source, work)
        print("profiles", report["profiles"], flush=True)
    if "startup" in phases:
        report["startup"] = phase_startup(work, trials=5)
        print("startup", report["startup"], flush=True)
    if "http" in phases:
        report["startup_http"] = phase_http(work, trials=5)
        print("startup_http", report["startup_http"], flush=True)
    if "realtime" in phases:
        report["realtime_medium"] = phase_realtime(source, work, args.sessions, "medium")
    if "remux" in phases:
        report["realtime_remux"] = phase_realtime(source, work, args.remux, None)
    if "threads" in phases:
        report["threads_remux"] = phase_threads(source, work, args.remux, None)
        report["threads_medium"] = phase_threads(source, work, args.sessions, "medium")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
