"""Files as the content parts a wire format carries, and where they go in the turns.

Both wire formats take the same :mod:`bot.providers.base` parts (the providers encode them);
what differs is what each format accepts, e.g. how large an image may be.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from bot.options import WireFormat
from bot.providers.base import DocumentPart, ImagePart, Part, TextPart, Turn

# Anthropic refuses an image whose base64 exceeds 5 MiB; OpenAI-format upstreams take 20 MiB.
_IMAGE_ENCODED_LIMIT: dict[WireFormat, int] = {"anthropic": 5 * 1024 * 1024, "openai": 20 * 1024 * 1024}


def encoded_size(size: int) -> int:
    """Bytes of base64 for ``size`` bytes: request limits count what travels."""
    return 4 * ((size + 2) // 3)


def max_raw_for_encoded(limit: int) -> int:
    return (limit // 4) * 3


def image_limit(wire_format: WireFormat) -> int:
    """The largest image (raw bytes) one image part may carry in ``wire_format``."""
    return max_raw_for_encoded(_IMAGE_ENCODED_LIMIT[wire_format])


def _fence(text: str) -> str:
    # Longer than any backtick run inside, so the file cannot close the block early.
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def text_block(title: str, text: str, *, cache: bool = False) -> TextPart:
    """A file's text, fenced, under a line that names it, ending in a newline."""
    fence = _fence(text)
    return TextPart(f"{title}\n{fence}\n{text}\n{fence}\n", cache=cache)


def text_file_part(name: str, text: str, *, cache: bool = False) -> TextPart:
    return text_block(f"File: {name}", text, cache=cache)


def extracted_text_part(name: str, text: str, *, cache: bool = False) -> TextPart:
    return text_block(f"Text extracted from {name} (layout and images not included):", text, cache=cache)


def document_part(name: str, data: bytes, *, cache: bool = False) -> DocumentPart:
    return DocumentPart(data=data, name=name, cache=cache)


def image_part(name: str, data: bytes, media_type: str) -> ImagePart:
    return ImagePart(data=data, media_type=media_type, name=name)


def cache_last(parts: Sequence[Part]) -> list[Part]:
    """Mark the last part that can carry a cache breakpoint.

    Anthropic caches the whole prefix up to a breakpoint and allows only four per request, so
    one breakpoint after a group of files covers all of them.
    """
    out = list(parts)
    for index in range(len(out) - 1, -1, -1):
        part = out[index]
        if isinstance(part, DocumentPart | TextPart):
            out[index] = dataclasses.replace(part, cache=True)
            break
    return out


def lead_with(turns: Sequence[Turn], parts: Sequence[Part]) -> list[Turn]:
    """``parts`` (files from earlier in the conversation) at the start of the first user turn.

    The front of the prompt is the part that stays the same from one follow-up to the next,
    so a cache breakpoint there keeps paying off however the history below it grows or is trimmed.
    """
    out = list(turns)
    if not parts:
        return out
    for index, turn in enumerate(out):
        if turn.role == "user":
            out[index] = Turn("user", (*parts, *turn.parts))
            return out
    return [Turn("user", tuple(parts)), *out]


def document_text_part(name: str, text: str, *, cache: bool = False) -> TextPart:
    return text_block(f"Text of {name} (as Markdown; images not included):", text, cache=cache)
