"""How long a voice note or audio file is, from its container's headers, without decoding it.

mutagen reads Ogg (Opus, Vorbis, FLAC), MP3 (Xing/VBRI headers, else the bitrate and size),
MP4/M4A (``mvhd``), WAV and FLAC; WebM, which mutagen does not read, has its ``Duration`` in the
segment's ``Info`` element, read here. Browsers' recorders often write WebM without a duration:
such a file is then limited by its size alone.
"""

from __future__ import annotations

import io
import logging
import struct
from typing import Any

log = logging.getLogger("parley.files")

_WEBM_SCAN = 1024 * 1024  # the Info element sits at the start of the segment
_EBML_HEADER = 0x1A45DFA3
_SEGMENT = 0x18538067
_INFO = 0x1549A966
_TIMECODE_SCALE = 0x2AD7B1
_DURATION = 0x4489
_UNKNOWN_SIZE = -1


def _mutagen_types(fmt: str) -> list[Any]:
    if fmt == "ogg":
        from mutagen.oggflac import OggFLAC
        from mutagen.oggopus import OggOpus
        from mutagen.oggvorbis import OggVorbis

        return [OggOpus, OggVorbis, OggFLAC]
    if fmt == "mp3":
        from mutagen.mp3 import MP3

        return [MP3]
    if fmt in ("m4a", "mp4"):
        from mutagen.mp4 import MP4

        return [MP4]
    if fmt == "wav":
        from mutagen.wave import WAVE

        return [WAVE]
    if fmt == "flac":
        from mutagen.flac import FLAC

        return [FLAC]
    return []


def duration(data: bytes, fmt: str) -> float | None:
    """Seconds of audio in ``data`` of format ``fmt`` (as sniffed), or None if the headers don't say."""
    if fmt == "webm":
        return webm_duration(data)
    import mutagen

    try:
        found = mutagen.File(io.BufferedReader(io.BytesIO(data)), options=_mutagen_types(fmt))
    except Exception as exc:  # mutagen raises its own errors and struct/index errors on damage
        log.info("no duration for a %s file: %s", fmt, exc)
        return None
    length = getattr(getattr(found, "info", None), "length", None)
    return float(length) if isinstance(length, int | float) and length > 0 else None


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at ``pos``: (value, position after it)."""
    if pos >= len(data):
        raise ValueError("past the end")
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or pos + length > len(data):
        raise ValueError("bad vint")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    if not keep_marker and value == (1 << (7 * length)) - 1:
        value = _UNKNOWN_SIZE
    return value, pos + length


def _elements(data: bytes, start: int, end: int) -> Any:
    """(id, payload start, payload end) of the EBML elements between ``start`` and ``end``."""
    pos = start
    while pos < end:
        element, pos = _vint(data, pos, keep_marker=True)
        size, pos = _vint(data, pos, keep_marker=False)
        stop = end if size == _UNKNOWN_SIZE else min(pos + size, end)
        yield element, pos, stop
        if size == _UNKNOWN_SIZE:
            return
        pos = stop


def _info_duration(data: bytes, start: int, end: int) -> float | None:
    scale = 1_000_000  # nanoseconds per tick, the default
    ticks: float | None = None
    for element, begin, stop in _elements(data, start, end):
        payload = data[begin:stop]
        if element == _TIMECODE_SCALE and payload:
            scale = int.from_bytes(payload, "big")
        elif element == _DURATION and len(payload) in (4, 8):
            ticks = struct.unpack(">f" if len(payload) == 4 else ">d", payload)[0]
    if ticks is None or not ticks > 0:
        return None
    return float(ticks) * scale / 1e9


def webm_duration(data: bytes) -> float | None:
    head = data[:_WEBM_SCAN]
    try:
        for element, begin, stop in _elements(head, 0, len(head)):
            if element != _SEGMENT:
                continue
            for child, child_begin, child_stop in _elements(head, begin, stop):
                if child == _INFO:
                    return _info_duration(head, child_begin, child_stop)
            return None
    except ValueError:
        return None
    return None
