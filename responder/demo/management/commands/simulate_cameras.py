from django.core.management.base import BaseCommand

from responder.demo.simulate import simulator_server


class Command(BaseCommand):
    help = (
        "Serve simulated cameras over HTTP: /<name>/video.ts?size=1920x1080&fps=30&kbps=4500"
        "&gop=30 (H.264 in MPEG-TS), /<name>/mjpeg?size=640x360&fps=5 and a Mobotix camera's "
        "/<name>/faststream.jpg?stream=MxPEG|mxg|full&size=640x360&fps=5."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8554)
        parser.add_argument(
            "--seconds",
            type=int,
            default=10,
            help="How long an unwatched stream's encoder runs on.",
        )

    def handle(self, *args, host: str, port: int, seconds: int, **options) -> None:
        server = simulator_server(host, port, seconds=seconds)
        self.stdout.write(f"Simulated cameras on http://{host}:{server.server_port}/")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
