"""Credentials out of text: FFmpeg's and PyAV's errors quote the URL they opened."""

import re

# The userinfo of a URL (rtsp://user:pass@host/...) and a bare user:pass@host.
CREDENTIALS = re.compile(r"(?<=://)[^/@\s'\"]*@|(?<![\w/])[^\s'\"/@:()<>\[\]]+:[^\s'\"/@]*@")


def credentials_strip(text: str) -> str:
    """`text` with every user:password@ removed; the rest (host, path) stays for IT."""
    return CREDENTIALS.sub("", text)
