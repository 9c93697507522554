"""One file into the parts a request carries: a PDF as a document (or its extracted text), an
image, a text file inline, any other document as its Markdown text; each with the notes the user
should see about it, within the request's room."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from bot.files import parts as wire
from bot.files.errors import FileError, megabytes
from bot.files.loaded import Loaded, Room, cut_note
from bot.files.pdf import PdfInfo, decrypted_copy, extract_text, inspect_pdf, release_free_memory
from bot.files.sniff import Kind
from bot.files.texts import TextMemory
from bot.options import ModelOptions, WireFormat
from bot.providers.base import Part
from bot.settings import Settings

_LAYOUT = "layout and images are not seen"
_PDF_INFO_CACHE = 128
_HEAVY_JOBS = 2  # PDF parses at once: each can briefly need a few times its file's size

Converted = tuple[list[Part], list[str]]  # (parts, notes for the user)


class Converter:
    def __init__(self, settings: Settings, texts: TextMemory) -> None:
        self.settings = settings
        self.texts = texts
        self.heavy = asyncio.Semaphore(_HEAVY_JOBS)
        self._pdf_info: OrderedDict[str, PdfInfo] = OrderedDict()

    async def parts(
        self, loaded: Loaded, room: Room, options: ModelOptions, wire_format: WireFormat
    ) -> Converted:
        """The parts for one file, and the notes the user should see about it."""
        kind = loaded.kind.kind
        if kind is Kind.PDF:
            return await self.pdf_parts(loaded, room, options)
        if kind is Kind.IMAGE:
            return self._image_parts(loaded, room, wire_format)
        if kind is Kind.DOCUMENT:
            return await self.document_parts(loaded, room)
        return self._text_parts(loaded.name, loaded.kind.text or "", room)

    def _image_parts(self, loaded: Loaded, room: Room, wire_format: WireFormat) -> Converted:
        name, size = loaded.name, len(loaded.data)
        assert loaded.kind.media_type is not None
        limit = wire.image_limit(wire_format)
        if size > limit:
            return [], [
                f"I couldn't use {name}: it is {megabytes(size, up=True)}, "
                f"and this model takes images up to {megabytes(limit)}."
            ]
        encoded = wire.encoded_size(size)
        if encoded > room.encoded_bytes:
            return [], [f"I couldn't use {name}: it didn't fit in this request beside the other files."]
        room.encoded_bytes -= encoded
        return [wire.image_part(name, loaded.data, loaded.kind.media_type)], []

    @staticmethod
    def _text_parts(name: str, text: str, room: Room) -> Converted:
        if room.text_chars <= 0:
            return [], [f"I couldn't use {name}: there was no room left for more text in this request."]
        notes = []
        if len(text) > room.text_chars:
            text = text[: room.text_chars]
            notes.append(cut_note(name, len(text)))
        room.text_chars -= len(text)
        return [wire.text_file_part(name, text)], notes

    # -- documents -------------------------------------------------------------------------------

    async def document_parts(self, loaded: Loaded, room: Room) -> Converted:
        name = loaded.name
        try:
            text, truncated = await self.text_of(loaded)
        except FileError as exc:
            return [], [exc.sentence(name)]
        if not text.strip():
            return [], [f"I couldn't find any text in {name}, so I couldn't read it."]
        if room.text_chars <= 0:
            return [], [f"I couldn't use {name}: there was no room left for more text in this request."]
        notes = []
        if len(text) > room.text_chars or truncated:
            text = text[: room.text_chars]
            notes.append(cut_note(name, len(text)))
        room.text_chars -= len(text)
        return [wire.document_text_part(name, text)], notes

    async def text_of(self, loaded: Loaded) -> tuple[str, bool]:
        """(text, cut at the budget) of a PDF or document: extracted once per file, remembered."""
        limit = self.settings.parley_file_text_chars
        found = await self.texts.known(loaded.sha256, limit)
        if found is not None:
            return found
        async with self.heavy:
            if loaded.kind.kind is Kind.PDF:
                pdf = await asyncio.to_thread(extract_text, loaded.data, max_chars=limit, name=loaded.name)
                found = (pdf.text, pdf.truncated)
            else:
                from bot.files.documents import read_document

                doc = await asyncio.to_thread(
                    read_document,
                    loaded.data,
                    loaded.kind.format,
                    max_chars=limit,
                    name=loaded.name,
                    text=loaded.kind.text,
                )
                found = (doc.text, doc.truncated)
        await release_free_memory()
        await self.texts.remember(loaded.sha256, *found, name=loaded.name)
        return found

    # -- PDFs ------------------------------------------------------------------------------------

    async def inspect(self, sha256: str, data: bytes, name: str) -> PdfInfo:
        info = self._pdf_info.get(sha256)
        if info is None:
            async with self.heavy:
                info = await asyncio.to_thread(inspect_pdf, data, name=name)
            self._pdf_info[sha256] = info
            while len(self._pdf_info) > _PDF_INFO_CACHE:
                self._pdf_info.popitem(last=False)
        else:
            self._pdf_info.move_to_end(sha256)
        return info

    def known_info(self, sha256: str) -> PdfInfo | None:
        return self._pdf_info.get(sha256)

    async def pdf_parts(self, loaded: Loaded, room: Room, options: ModelOptions) -> Converted:
        name = loaded.name
        try:
            info = await self.inspect(loaded.sha256, loaded.data, name)
            why_not = why_not_document(name, info, len(loaded.data), room, options)
            if why_not is None:
                data = loaded.data
                if info.encrypted:
                    async with self.heavy:
                        data = await asyncio.to_thread(decrypted_copy, data, name=name)
                encoded = wire.encoded_size(len(data))
                if encoded <= room.encoded_bytes:
                    room.pages -= info.pages
                    room.encoded_bytes -= encoded
                    return [wire.document_part(name, data)], []
                why_not = f"{name} didn't fit in this request beside the other files"
            return await self.pdf_text(loaded, room, why_not)
        except FileError as exc:
            return [], [exc.sentence(name)]

    async def pdf_text(self, loaded: Loaded, room: Room, why_not: str) -> Converted:
        """The extracted-text fallback, with the note that says why and what is lost."""
        name = loaded.name
        text, truncated = await self.text_of(loaded)
        if not text.strip():
            return [], [
                f"{why_not}, and {name} has no text I could extract (it may be scanned images), "
                "so I couldn't read it."
            ]
        if room.text_chars <= 0:
            return [], [
                f"{why_not}, and there was no room left for the text of {name} in this request, "
                "so I couldn't read it."
            ]
        notes = [f"{why_not}, so I used the text of {name} instead: {_LAYOUT}."]
        if len(text) > room.text_chars or truncated:
            text = text[: room.text_chars]
            notes.append(cut_note(name, len(text)))
        room.text_chars -= len(text)
        return [wire.extracted_text_part(name, text)], notes


def why_not_document(name: str, info: PdfInfo, size: int, room: Room, options: ModelOptions) -> str | None:
    """Why this PDF can't go as a document in this request (a clause naming it), or None."""
    if not options.documents:
        return "This model doesn't take PDFs as documents"
    if info.pages > options.max_pdf_pages:
        return (
            f"{name} has {info.pages} pages, more than the {options.max_pdf_pages} this model takes "
            "as a document"
        )
    if wire.encoded_size(size) > options.max_pdf_bytes:
        limit = wire.max_raw_for_encoded(options.max_pdf_bytes)
        return (
            f"{name} is {megabytes(size, up=True)}, more than the {megabytes(limit)} of PDF this model takes "
            "in one request"
        )
    if info.pages > room.pages or wire.encoded_size(size) > room.encoded_bytes:
        return f"{name} didn't fit in this request beside the other files"
    return None
