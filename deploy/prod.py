"""`make prod`: the production layout on one machine, to try it and to test it.

Debian's nginx with a self-signed certificate terminates HTTPS and HTTP/2 in front of
gunicorn (HTTP) and two daphnes (sockets), with Celery workers per queue, one beat and one
recorder, all with DEBUG off: what deploy/systemd runs, from the same nginx site
(deploy/nginx/responder.conf). Ctrl-C stops the processes in reverse order.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "responder.conf"
NGINX = "/usr/sbin/nginx"
# The queues and how each is served: transcodes are CPU (processes), pushes wait on the
# network (threads).
WORKERS = {
    "default": ["--pool", "prefork", "--concurrency", "2"],
    "video": ["--pool", "prefork", "--concurrency", "4"],
}


def _evidence_key() -> str:
    """The trial's district key for signing evidence (production keeps its own, on disk)."""
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, its own issuer: the trial's CA too."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Responder (make prod)")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def site_render(values: dict[str, str]) -> str:
    text = SITE.read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    if "@" in "".join(line.split("#")[0] for line in text.splitlines()):
        raise ValueError("deploy/nginx/responder.conf has a placeholder left unfilled")
    return text


@dataclass
class Layout:
    """The processes of deploy/systemd on one machine, under `directory`."""

    directory: Path
    port: int
    overrides: dict[str, str] = field(default_factory=dict)
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # One environment, one SECRET_KEY, for every process of the layout.
        self.env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "EVIDENCE_SIGNING_KEY": _evidence_key(),
            "EVIDENCE_ROOT": str(self.directory / "evidence"),
            "CREDENTIALS_SALT": secrets.token_urlsafe(32),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CSRF_TRUSTED_ORIGINS": self.url,
            "SITE_URL": self.url,
            "TRUSTED_PROXIES": "127.0.0.1",
            "LIVE_ROOT": str(self.directory / "live"),
            "RECORDINGS_ROOT": str(self.directory / "recordings"),
            "LIVE_ACCEL_REDIRECT": "/_live/",
            "RECORDINGS_ACCEL_REDIRECT": "/_recordings/",
            "STATIC_ROOT": str(self.directory / "static"),
            "PUSH_ENABLED": "false",
            "DJANGO_SETTINGS_MODULE": "responder.settings",
            **self.overrides,
        }

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def certificate(self) -> Path:
        return self.directory / "tls.crt"

    def start(self) -> None:
        (self.directory / "live").mkdir(exist_ok=True)
        self.manage("collectstatic", "--no-input", "--verbosity", "0")
        http_port, daphne_ports = free_port(), [free_port(), free_port()]
        self._start(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{http_port}",
             "--worker-class", "gthread", "--workers", "1", "--threads", "8",
             "responder.wsgi:application"],
            http_port,
        )  # fmt: skip
        for port in daphne_ports:
            self._start(
                f"daphne-{port}",
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                 "--proxy-headers", "--websocket_connect_timeout", "30",
                 "responder.asgi:application"],
                port,
            )  # fmt: skip
        for queue, options in WORKERS.items():
            self._start(
                f"worker-{queue}",
                [sys.executable, "-m", "celery", "-A", "responder", "worker", "-Q", queue,
                 "--hostname", f"{queue}@%h", "--loglevel", "INFO", *options],
            )  # fmt: skip
        self._start(
            "beat",
            [sys.executable, "-m", "celery", "-A", "responder", "beat", "--loglevel", "INFO",
             "--schedule", str(self.directory / "celerybeat-schedule")],
        )  # fmt: skip
        # One recorder here; more (on this machine or others) share the cameras by lease.
        self._start("recorder", [sys.executable, "manage.py", "record", "--name", "recorder-1"])
        self._start(
            "nginx", [NGINX, "-c", str(self._nginx_conf(http_port, daphne_ports))], self.port
        )

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True)

    def _start(self, name: str, command: list[str], port: int | None = None) -> None:
        log = (self.directory / f"{name}.log").open("w")
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        self.processes.append((name, process))
        if port is not None:
            _wait_for(port, process, name)

    def _nginx_conf(self, http_port: int, daphne_ports: list[int]) -> Path:
        cert, key = self_signed(self.directory)
        site = self.directory / "responder.conf"
        site.write_text(
            site_render(
                {
                    "LISTEN": f"127.0.0.1:{self.port}",
                    "SERVER_NAME": "127.0.0.1 localhost",
                    "CERTIFICATE": str(cert),
                    "CERTIFICATE_KEY": str(key),
                    "GUNICORN": f"server 127.0.0.1:{http_port};",
                    "DAPHNES": " ".join(f"server 127.0.0.1:{p};" for p in daphne_ports),
                    "LIVE_ROOT": self.env["LIVE_ROOT"],
                    "RECORDINGS_ROOT": self.env["RECORDINGS_ROOT"],
                    "STATIC_ROOT": self.env["STATIC_ROOT"],
                    "ROOT": str(ROOT),
                }
            )
        )
        return nginx_conf(self.directory, site)


def nginx_conf(directory: Path, site: Path) -> Path:
    """nginx's main file for `site`, run in the foreground as this user, all under `directory`."""
    conf = directory / "nginx.conf"
    temp = directory / "nginx-temp"
    temp.mkdir(exist_ok=True)
    # Run as root (CI, a trial box), nginx's workers would drop to `nobody` and could not
    # read the private temporary folders; they stay this user instead.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {directory}/nginx.pid;\n"
        f"error_log {directory}/nginx-error.log warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        f"    access_log {directory}/nginx-access.log;\n"
        f"    client_body_temp_path {temp}/body;\n    proxy_temp_path {temp}/proxy;\n"
        f"    fastcgi_temp_path {temp}/fastcgi;\n    uwsgi_temp_path {temp}/uwsgi;\n"
        f"    scgi_temp_path {temp}/scgi;\n"
        f"    include {site};\n"
        "}\n"
    )
    return conf


def _wait_for(port: int, process: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on {port}")


def main() -> int:
    port = int(os.environ.get("PORT", "8443"))
    with tempfile.TemporaryDirectory(prefix="responder-prod-") as directory:
        layout = Layout(Path(directory), port)
        layout.manage("migrate", "--no-input", "--verbosity", "0")
        layout.manage("ensure_roles")
        layout.start()
        print(
            f"Responder (production layout): {layout.url}/ (self-signed certificate)\n"
            f"Logs in {directory}. Users: .venv/bin/python manage.py createsuperuser. "
            "Ctrl-C stops everything.",
            flush=True,
        )
        try:
            while all(process.poll() is None for _, process in layout.processes):
                time.sleep(1)
            stopped = [name for name, p in layout.processes if p.poll() is not None]
            print(f"Stopped by itself: {', '.join(stopped)}; see its log.", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            # A second Ctrl-C (or make passing the first one on) must not cut the stop short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            layout.stop()


if __name__ == "__main__":
    sys.exit(main())
