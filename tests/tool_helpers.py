"""What the tool-loop tests on the console and both platforms share: a picture worth comparing
byte for byte, the test MCP server's table for parley.toml, and readers for what the model got.

Also the ``pages`` fixture (a plugin of ``conftest.py``): the page server in the test's event
loop. A module that needs other pages, or the server in a thread of its own, overrides it.
"""

from __future__ import annotations

import random
import struct
import sys
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.gateway import RecordedRequest
from tests.fakes.pages import ARTICLE_SENTENCES, NAV_WORDS, PageServer

MCP_SERVER = Path(__file__).resolve().parent / "fakes" / "mcp_server.py"


@pytest.fixture
async def pages() -> AsyncIterator[PageServer]:
    async with PageServer() as server:
        yield server


def random_png(side: int = 96, seed: int = 7) -> bytes:
    """A valid PNG of random pixels (about ``3 * side**2`` bytes: it does not compress), so a
    byte-exact comparison means something."""
    rng = random.Random(seed)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def mcp_toml(name: str = "docs") -> str:
    """A ``[mcp.NAME]`` table that starts the test MCP server over stdio."""
    return f"[mcp.{name}]\ncommand = {sys.executable!r}\nargs = [{str(MCP_SERVER)!r}]\n"


def result_text(request: RecordedRequest) -> str:
    """Every tool result a request sent back, as one text (either format)."""
    parts: list[str] = []
    for result in request.tool_results:
        parts.append(_text(result.content))
    return "\n".join(parts)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return str(content)


def read_the_article(text: str) -> bool:
    """Whether ``text`` has the page's article and none of its navigation boilerplate."""
    return all(s in text for s in ARTICLE_SENTENCES) and not any(w in text for w in NAV_WORDS)
