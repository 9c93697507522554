"""Audio files for the voice tests, built byte by byte: real container headers (what Parley
reads the duration from) around payloads no decoder needs to understand."""

from __future__ import annotations

import io
import random
import struct
import wave


def _crc32_ogg(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(payload: bytes, *, granule: int, sequence: int, flags: int = 0, serial: int = 7) -> bytes:
    segments = [255] * (len(payload) // 255) + [len(payload) % 255]
    header = struct.pack("<4sBBqIII", b"OggS", 0, flags, granule, serial, sequence, 0)
    page = header + bytes([len(segments)]) + bytes(segments) + payload
    crc = _crc32_ogg(page)
    return page[:22] + struct.pack("<I", crc) + page[26:]


def ogg_opus(seconds: float, *, payload_bytes: int = 4000, seed: int = 1) -> bytes:
    """An Ogg/Opus voice note (what Discord sends) lasting ``seconds`` by its granule positions."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 6) + b"parley" + struct.pack("<I", 0)
    rng = random.Random(seed)
    pages = [_ogg_page(head, granule=0, sequence=0, flags=2), _ogg_page(tags, granule=0, sequence=1)]
    chunks = max(1, payload_bytes // 200)
    for index in range(chunks):
        granule = 312 + int(seconds * 48000 * (index + 1) / chunks)
        last = index == chunks - 1
        pages.append(
            _ogg_page(rng.randbytes(200), granule=granule, sequence=2 + index, flags=4 if last else 0)
        )
    return b"".join(pages)


def wav(seconds: float, *, rate: int = 8000, seed: int = 2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(random.Random(seed).randbytes(int(seconds * rate) * 2))
    return out.getvalue()


def flac(seconds: float, *, rate: int = 16000) -> bytes:
    """A FLAC stream header (STREAMINFO) that says how many samples follow."""
    samples = int(seconds * rate)
    info = struct.pack(">HH", 4096, 4096) + b"\x00\x00\x10" + b"\x00\x00\x10"
    # 20 bits rate, 3 bits channels-1, 5 bits bps-1, 36 bits total samples
    packed = (rate << 44) | (0 << 41) | (15 << 36) | samples
    info += packed.to_bytes(8, "big") + bytes(16)  # + MD5
    return b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info + bytes(64)


def mp3(frames: int = 40) -> bytes:
    """MPEG-1 layer III frames at 128 kbit/s, 44.1 kHz (417 bytes each, 26 ms)."""
    header = b"\xff\xfb\x90\x00"
    return (header + bytes(417 - 4)) * frames


def _ebml(element: int, payload: bytes) -> bytes:
    ident = element.to_bytes((element.bit_length() + 7) // 8, "big")
    return ident + (0x0100000000000000 | len(payload)).to_bytes(8, "big") + payload


def webm(seconds: float | None, *, payload_bytes: int = 2000) -> bytes:
    """A WebM file: EBML header (DocType webm), then a segment whose Info has the duration (in ms
    ticks), or none, as browsers' recorders write it."""
    header = _ebml(0x1A45DFA3, _ebml(0x4282, b"webm"))
    info = _ebml(0x2AD7B1, (1_000_000).to_bytes(3, "big"))
    if seconds is not None:
        info += _ebml(0x4489, struct.pack(">d", seconds * 1000))
    cluster = _ebml(0x1F43B675, random.Random(3).randbytes(payload_bytes))
    return header + _ebml(0x18538067, _ebml(0x1549A966, info) + cluster)


def m4a(payload_bytes: int = 1000) -> bytes:
    """The start of an M4A file: an ``ftyp`` box with the M4A brand, then media data."""
    ftyp = struct.pack(">I4s4sI", 24, b"ftyp", b"M4A ", 0) + b"M4A isom"
    return ftyp + struct.pack(">I4s", 8 + payload_bytes, b"mdat") + bytes(payload_bytes)
