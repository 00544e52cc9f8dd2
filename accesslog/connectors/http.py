"""A few lines over urllib: enough for two vendor APIs, no extra dependency."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPResponse

from accesslog.connectors.base import TransientError


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    timeout: float = 30.0
    ca_file: str | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        # On-premises servers often use the district's own CA: trust it, never skip checks.
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None


class HTTPStatusError(TransientError):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status


def http_open(
    endpoint: Endpoint,
    path: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> HTTPResponse:
    """The open response of a 2xx answer; HTTPStatusError for any other status."""
    request = urllib.request.Request(
        endpoint.base_url.rstrip("/") + path, data=body, method=method, headers=headers or {}
    )
    try:
        return urllib.request.urlopen(  # noqa: S310 - the URL is the operator's setting
            request, timeout=timeout or endpoint.timeout, context=endpoint.ssl_context()
        )
    except urllib.error.HTTPError as exc:
        with exc:
            raise HTTPStatusError(exc.code, exc.read()) from None
    except urllib.error.URLError as exc:
        raise TransientError(f"cannot reach {endpoint.base_url}: {exc.reason}") from None
