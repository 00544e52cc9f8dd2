"""NetBox's StreamEvents answer, cut into its XML documents as the bytes arrive."""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET

from accesslog.connectors.base import TransientError

START = re.compile(r"<NETBOX[\s>]")
END = "</NETBOX>"
# One event is a few hundred bytes; a megabyte without a whole document is not NetBox.
MAX_PENDING = 1024 * 1024


class NetBoxDocuments:
    """Feed it chunks of the response; it returns each <NETBOX> document once complete.

    The answer is multipart/related: a boundary line and part headers, then one XML
    document per event (or per keep-alive ping), on a response that never ends. Everything
    between documents is skipped, so the parser does not depend on the boundary string,
    the part headers, or how the chunks happen to be cut.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, data: bytes) -> list[ET.Element]:
        self._pending += self._decoder.decode(data)
        documents = []
        while start := START.search(self._pending):
            end = self._pending.find(END, start.start())
            if end < 0:
                self._pending = self._pending[start.start() :]
                break
            stop = end + len(END)
            documents.append(self._parse(self._pending[start.start() : stop]))
            self._pending = self._pending[stop:]
        else:
            # Keep just enough for a start tag cut in two by the chunking.
            self._pending = self._pending[-len("<NETBOX") :]
        if len(self._pending) > MAX_PENDING:
            raise TransientError("StreamEvents sent a megabyte without a whole document")
        return documents

    @staticmethod
    def _parse(text: str) -> ET.Element:
        try:
            # expat expands no external entities and caps entity expansion (3.11+).
            return ET.fromstring(text)
        except ET.ParseError as exc:
            raise TransientError(f"StreamEvents sent malformed XML: {exc}") from None
