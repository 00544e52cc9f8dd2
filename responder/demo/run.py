"""`make demo`'s processes: the Procfile's, each logging to its own file, and Redis.

`python -m responder.demo.run [NAME ...]` starts an embedded Redis (unless REDIS_URL is set),
then the Procfile's processes (or the named ones) with PORT, prints one line per process
and a short sign-in block that no log line scrolls away, and on Ctrl-C stops them in
reverse order, Redis last, and exits 0.

Not honcho: honcho stops every process at once (the worker then finds Redis gone and
prints tracebacks) and interleaves every log on the screen, over the sign-in help.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from responder import embedded_redis

ROOT = Path(__file__).resolve().parent.parent.parent
STOP_SECONDS = 15  # a celery worker's warm shutdown finishes its tasks first


@dataclass
class Running:
    name: str
    process: subprocess.Popen
    log: Path


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def procfile(path: Path) -> list[tuple[str, str]]:
    entries = []
    for line in path.read_text().splitlines():
        name, colon, command = line.partition(":")
        if colon and name.strip() and not name.lstrip().startswith("#"):
            entries.append((name.strip(), command.strip()))
    return entries


def process_start(name: str, command: str, *, env: dict[str, str], logs: Path) -> Running:
    log = logs / f"{name}.log"
    # Its own process group: the terminal's Ctrl-C reaches this supervisor only, which
    # then stops each process in its turn.
    process = subprocess.Popen(
        ["sh", "-c", f"exec {command}"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Running(name, process, log)


def process_stop(running: Running) -> int:
    if running.process.poll() is None:
        # To the process alone (`exec` made it the shell): celery stops its own pool, and
        # finds its pool killed under it, with a traceback, when the group is signalled.
        running.process.terminate()
        try:
            running.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(running.process.pid, signal.SIGKILL)
            running.process.wait()
    # Children the shell left behind (celery's pool) go with the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(running.process.pid, signal.SIGKILL)
    return running.process.returncode


@contextlib.contextmanager
def redis_at_hand(env: dict[str, str]) -> Iterator[dict[str, str]]:
    if env.get("REDIS_URL"):
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="responder-redis-") as directory:
        port = int(env.get("EMBEDDED_REDIS_PORT") or embedded_redis.free_port())
        server = embedded_redis.start(port, directory, own_session=True)
        try:
            yield {**env, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        finally:
            server.terminate()
            server.wait(timeout=10)


@contextlib.contextmanager
def terminal_foreground() -> Iterator[None]:
    """Take the terminal's foreground, so Ctrl-C interrupts this program and not make.

    make dies of a SIGINT it receives (exit 130) whatever its recipe does; as a shell's
    job control does, the foreground process group becomes this one until the end.
    """
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        yield  # no terminal (a test, a service): signals come from whoever started us
        return
    before = os.tcgetpgrp(tty)
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background tcsetpgrp
    try:
        if os.getpgrp() != os.getpid():
            os.setpgid(0, 0)
        os.tcsetpgrp(tty, os.getpgrp())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(tty, before)
        signal.signal(signal.SIGTTOU, previous)
        os.close(tty)


def sign_in_block(env: dict[str, str], logs: Path) -> str:
    codes = subprocess.run(
        [sys.executable, "manage.py", "demo_codes"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return "\n".join(
        [
            "",
            (codes.stdout or codes.stderr).rstrip(),
            "Fresh codes: .venv/bin/python manage.py demo_codes",
            f"Logs: {logs}/<process>.log. Ctrl-C stops everything.",
        ]
    )


def wait_for_stop(running: list[Running]) -> bool:
    """True when asked to stop, False when a process ended on its own."""
    stop = {"asked": False}

    def asked(signum: int, frame: object) -> None:
        stop["asked"] = True

    signal.signal(signal.SIGINT, asked)
    signal.signal(signal.SIGTERM, asked)
    while not stop["asked"]:
        for each in running:
            code = each.process.poll()
            if code is not None:
                say(f"{each.name} exited ({code}): see {each.log}; stopping the rest")
                return False
        time.sleep(0.2)
    return True


def main(argv: list[str]) -> int:
    port = os.environ.get("PORT") or "8000"
    env = {**os.environ, "PORT": port, "PYTHONUNBUFFERED": "1"}
    logs = Path(os.environ.get("DEMO_LOG_DIR") or ROOT / "logs")
    logs.mkdir(parents=True, exist_ok=True)
    entries = procfile(ROOT / "Procfile")
    if argv:
        unknown = set(argv) - {name for name, _ in entries}
        if unknown:
            raise SystemExit(f"Not in the Procfile: {', '.join(sorted(unknown))}")
        entries = [(name, command) for name, command in entries if name in argv]
    # Until the handlers of wait_for_stop are in place, a Ctrl-C stops what has started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    running: list[Running] = []
    asked = True
    with terminal_foreground(), redis_at_hand(env) as env:
        try:
            for name, command in entries:
                running.append(process_start(name, command, env=env, logs=logs))
                say(f"  {name:<8} pid {running[-1].process.pid:<7} {running[-1].log}")
            say(sign_in_block(env, logs))
            asked = wait_for_stop(running)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C cuts no stop short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            for each in reversed(running):
                code = process_stop(each)
                say(f"  stopped {each.name} ({code})")
    if not os.environ.get("REDIS_URL"):
        say("  stopped redis")
    return 0 if asked else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
