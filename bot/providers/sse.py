"""An incremental Server-Sent Events parser that also surfaces the gateway's bare JSON lines.

Lines are split on bytes (CR, LF and CRLF are all line ends, even when a CRLF straddles two
network chunks) and decoded only once whole, so a UTF-8 character split across chunks is never
torn. Beyond the SSE spec, a line that starts with ``{`` or ``[`` is reported as a
:class:`BareLine`: the OpenAI-format gateway writes errors that happen after the headers that
way, without a ``data:`` prefix, and a spec-strict parser would silently drop them.

This runs once per token, so it avoids per-byte work: the common chunk (``data: {...}\\n\\n``)
costs one ``split`` and one decode per line.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"
_COLON = 0x3A
_BARE_STARTS = (0x7B, 0x5B)  # "{", "["


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str  # the ``event:`` field, "message" when absent
    data: str  # ``data:`` lines joined with "\n"


@dataclass(frozen=True, slots=True)
class Comment:
    """A ``:`` line; gateways send ``: PING`` as a keep-alive."""

    text: str


@dataclass(frozen=True, slots=True)
class BareLine:
    """A line that looks like JSON but carries no field name (an error the gateway wrote raw)."""

    text: str


SSEItem = SSEEvent | Comment | BareLine


def _decode(raw: bytes) -> str:
    # Garbage bytes must not kill a stream that is otherwise fine.
    return raw.decode("utf-8", "replace")


class SSEDecoder:
    """Feed it raw chunks in arrival order; it returns the items each chunk completed."""

    __slots__ = ("_buf", "_data", "_event", "_pending_cr", "_started")

    def __init__(self) -> None:
        self._buf = b""
        self._pending_cr = False  # the last chunk ended in CR: a leading LF now is its CRLF tail
        self._started = False
        self._event = ""
        self._data: list[str] | None = None

    def feed(self, chunk: bytes) -> list[SSEItem]:
        if not self._started:
            if not chunk:
                return []
            self._started = True
            chunk = chunk.removeprefix(_BOM)
        if self._pending_cr:
            self._pending_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            self._pending_cr = buf[-1:] == b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in buf:
            self._buf = buf
            return []
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        out: list[SSEItem] = []
        for line in lines:
            # The two lines of nearly every event, ``data: {…}`` and the blank line after it, are
            # handled here without a call; anything else goes through _line.
            if not line:
                self._dispatch(out)
            elif line.startswith(b"data: "):
                value = line[6:].decode("utf-8", "replace")
                if self._data is None:
                    self._data = [value]
                else:
                    self._data.append(value)
            else:
                self._line(line, out)
        return out

    def _dispatch(self, out: list[SSEItem]) -> None:
        """A blank line: the event gathered so far, if it had data, is complete."""
        data = self._data
        if data is not None:
            out.append(SSEEvent(self._event or "message", data[0] if len(data) == 1 else "\n".join(data)))
            self._data = None
        self._event = ""

    def close(self) -> list[SSEItem]:
        """End of stream: a last line without its newline and an event without its blank line still
        count, since a gateway that closes right after its final ``data: [DONE]`` means it."""
        out: list[SSEItem] = []
        if self._buf:
            line, self._buf = self._buf, b""
            self._line(line, out)
        self._line(b"", out)
        return out

    def _line(self, line: bytes, out: list[SSEItem]) -> None:
        if not line:
            self._dispatch(out)
            return
        first = line[0]
        if first == _COLON:
            out.append(Comment(_decode(line[1:]).strip()))
            return
        if first in _BARE_STARTS:
            out.append(BareLine(_decode(line)))
            return
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            if self._data is None:
                self._data = [_decode(value)]
            else:
                self._data.append(_decode(value))
        elif name == b"event":
            self._event = _decode(value)
        # id, retry and unknown fields do not matter to a one-shot stream.
