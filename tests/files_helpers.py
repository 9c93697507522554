"""Real files for the file-pipeline tests: PDFs made with reportlab, images made with Pillow,
and attachments whose fetchers count their calls."""

from __future__ import annotations

import base64
import io
import random
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from bot.files.errors import FileError
from bot.types import Attachment

PAGE_TEXTS = (
    "Quarterly report: revenue grew by 12 percent.",
    "Page two lists the risks: supply, staffing, weather.",
    "Page three closes with the outlook for next year.",
)


def pdf(pages: Sequence[str] = PAGE_TEXTS, *, encrypt: StandardEncryption | None = None) -> bytes:
    """A PDF with one line of known text per page."""
    buffer = io.BytesIO()
    sheet = canvas.Canvas(buffer, encrypt=encrypt)
    for text in pages:
        sheet.drawString(72, 720, text)
        sheet.showPage()
    sheet.save()
    return buffer.getvalue()


def encrypted_pdf(user_password: str = "s3cret") -> bytes:
    """Encrypted; with ``user_password=""`` it opens without one (only editing is restricted)."""
    return pdf(["Only with the password."], encrypt=StandardEncryption(user_password, ownerPassword="owner"))


def corrupt_pdf() -> bytes:
    """A PDF header over damaged bytes: no readable structure behind it."""
    rng = random.Random(7)
    return b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + rng.randbytes(4000)


def png(width: int = 32, height: int = 32, *, noise: bool = False, seed: int = 1) -> bytes:
    image = Image.new("RGB", (width, height), (200, 30, 30))
    if noise:
        rng = random.Random(seed)
        image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def image_only_pdf(pages: int = 2) -> bytes:
    """Scanned-looking pages: a picture each, and no text layer at all."""
    buffer = io.BytesIO()
    sheet = canvas.Canvas(buffer)
    picture = ImageReader(io.BytesIO(png(64, 64, noise=True)))
    for _ in range(pages):
        sheet.drawImage(picture, 72, 400, width=300, height=300)
        sheet.showPage()
    sheet.save()
    return buffer.getvalue()


def zip_bytes() -> bytes:
    """A binary file that is not a PDF (what a mislabelled .docx/.xlsx looks like)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>" * 50)
        archive.writestr("bin", bytes(range(256)) * 8)
    return buffer.getvalue()


@dataclass
class Source:
    """An attachment's origin: counts fetches, can fail like a platform does."""

    data: bytes = b""
    error: FileError | None = None
    fetches: list[int] = field(default_factory=list)  # the max_bytes of each call

    async def fetch(self, max_bytes: int) -> bytes:
        self.fetches.append(max_bytes)
        if self.error is not None:
            raise self.error
        return self.data[: max_bytes + 1]  # like the console: one byte more says "too large"


def attachment(
    name: str,
    data: bytes = b"",
    *,
    declared_type: str | None = None,
    size: int | None = -1,
    source: Source | None = None,
    source_id: str = "",
) -> tuple[Attachment, Source]:
    origin = source or Source(data)
    return (
        Attachment(
            name=name,
            declared_type=declared_type,
            size=len(origin.data) if size == -1 else size,
            fetch=origin.fetch,
            source_id=source_id,
        ),
        origin,
    )


def decoded_data_uri(uri: str, media_type: str) -> bytes:
    prefix = f"data:{media_type};base64,"
    assert uri.startswith(prefix), uri[:80]
    return base64.b64decode(uri[len(prefix) :], validate=True)


def user_messages(body: dict[str, Any]) -> list[Any]:
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


def blocks_of(content: Any, kind: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if kind == "text" else []
    return [b for b in content if b.get("type") == kind]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
