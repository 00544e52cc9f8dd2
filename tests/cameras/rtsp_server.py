"""A real RTSP server for the tests: GStreamer's rtsp-server, run by the system python3.

usage: /usr/bin/python3 rtsp_server.py FILE.ts PORT   (serves rtsp://127.0.0.1:PORT/camera)
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
path, port = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f"( filesrc location={path} ! tsdemux ! h264parse config-interval=-1 "
    "! rtph264pay name=pay0 pt=96 )"
)
factory.set_shared(True)
server.get_mount_points().add_factory("/camera", factory)
server.attach(None)
print("ready", flush=True)  # noqa: T201
GLib.MainLoop().run()
