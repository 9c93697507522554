"""FileService: a message's attachments (and the thread's earlier files) into model parts.

One turn:

1. Download this message's files within the per-message budget (count, bytes, time), type
   them by content, and turn each into a part the model's wire format carries: a PDF as a
   document when the model takes it, else its extracted text; an image; a text file inline.
2. Files on thread context messages (backfill) are downloaded once and linked to those messages.
3. Files from earlier in the conversation are re-sent, newest first, while they fit the
   request's room, at the front of the prompt with a cache breakpoint, so follow-up questions
   need no re-upload and cost little.

Every file that can't be used yields one honest note for the user. Nothing here raises to the
conversation service for a bad file; only programming errors propagate.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from bot.files import parts as wire
from bot.files.errors import DownloadFailed, FileError, FileTooLarge, megabytes
from bot.files.fetch import DownloadBudget
from bot.files.pdf import PdfInfo, decrypted_copy, extract_text, inspect_pdf, release_free_memory
from bot.files.sniff import PDF_MEDIA_TYPE, WHAT_PARLEY_READS, Kind, Sniffed, claims_pdf, decode_text, sniff
from bot.providers.base import Part, TextPart, Turn
from bot.settings import ModelOptions, Settings, WireFormat
from bot.store import AttachmentRecord, Store, StoredAttachment, StoreError
from bot.store.models import utcnow
from bot.types import Attachment, ContextMessage

log = logging.getLogger("parley.files")

_LAYOUT = "layout and images are not seen"
_EARLIER_ROWS = 50  # stored files looked at per turn, newest first
_PRUNE_EVERY = 3600.0  # seconds between retention sweeps
_PDF_INFO_CACHE = 128
_HEAVY_JOBS = 2  # PDF parses at once: each can briefly need a few times its file's size
_TEXT_CACHE = 32  # extracted texts remembered in-process (each at most parley_file_text_chars)


@dataclass(slots=True)
class PreparedFiles:
    """What the conversation service needs from the files of one turn."""

    parts: list[Part] = field(default_factory=list)  # this message's files, before the question
    earlier: list[Part] = field(default_factory=list)  # earlier files: they lead the prompt
    notes: list[str] = field(default_factory=list)  # for the user, shown before the answer
    question: str = ""  # the question to ask (the summarize instruction for a bare PDF)
    records: list[AttachmentRecord] = field(default_factory=list)  # store with the user message
    nothing_to_ask: bool = False  # files came, none was usable, and no question: notes suffice

    def lead(self, turns: Sequence[Turn]) -> list[Turn]:
        """``turns`` with the earlier files at the start of the first user turn."""
        return wire.lead_with(turns, self.earlier)


@dataclass(slots=True)
class _Loaded:
    name: str
    data: bytes
    sha256: str
    kind: Sniffed


@dataclass(slots=True)
class _Room:
    """What is left of one request's room for files."""

    pages: int
    encoded_bytes: int
    text_chars: int
    seen: set[str] = field(default_factory=set)  # sha256 of files already in the request


def _names(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


class FileService:
    """The core's attachment pipeline (see :class:`bot.turn.FilePipeline`)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._heavy = asyncio.Semaphore(_HEAVY_JOBS)
        self._pdf_info: OrderedDict[str, PdfInfo] = OrderedDict()
        self._texts: OrderedDict[str, tuple[str, bool]] = OrderedDict()  # sha256 → extracted text
        self._next_prune = 0.0

    # -- the turn --------------------------------------------------------------------------------

    async def prepare(
        self,
        conversation_id: int,
        attachments: Sequence[Attachment],
        model: str,
        *,
        question: str,
        context: Sequence[ContextMessage] = (),
    ) -> PreparedFiles:
        await self._maybe_prune()
        settings = self.settings
        options = settings.options_for(model)
        wire_format = settings.wire_format(model)
        budget = DownloadBudget(
            per_file=settings.parley_file_max_bytes,
            total=settings.parley_file_request_max_bytes,
            count=settings.parley_files_max_count,
        )
        room = _Room(options.max_pdf_pages, options.max_pdf_bytes, settings.parley_file_text_chars)
        out = PreparedFiles(question=question)

        summarized: list[str] = []
        skipped: list[str] = []
        for attachment in attachments:
            if not budget.admit():
                skipped.append(attachment.name)
                continue
            record, new_parts, used_pdf = await self._current(
                attachment, budget, room, options, wire_format, out
            )
            out.records.append(record)
            out.parts.extend(new_parts)
            if used_pdf:
                summarized.append(attachment.name)
        if skipped:
            out.notes.append(
                f"I read only the first {budget.count} files of this message; skipped: {', '.join(skipped)}."
            )
        out.parts = wire.cache_last(out.parts)

        if context:
            await self._context_files(conversation_id, context, attachments, budget, out)
        out.earlier = await self._earlier(conversation_id, room, options, wire_format)

        if not question.strip() and summarized:
            out.question = settings.parley_summarize_instruction
            out.notes.append(f"Summary of {_names(summarized)}:")
        out.nothing_to_ask = bool(attachments) and not out.parts and not out.question.strip()
        return out

    async def _current(
        self,
        attachment: Attachment,
        budget: DownloadBudget,
        room: _Room,
        options: ModelOptions,
        wire_format: WireFormat,
        out: PreparedFiles,
    ) -> tuple[AttachmentRecord, list[Part], bool]:
        """One file of this message: (its record, its parts, whether it was a usable PDF)."""
        name = attachment.name
        try:
            loaded = await self._load(attachment, budget)
            if loaded.kind.kind is Kind.PDF:
                await self._inspect(loaded.sha256, loaded.data, name)
        except FileError as exc:
            out.notes.append(exc.sentence(name))
            return AttachmentRecord.from_attachment(attachment), [], False
        record = AttachmentRecord(name, loaded.kind.media_type, len(loaded.data))
        if loaded.sha256 in room.seen:
            # The same bytes twice in one message: one copy is enough for the model.
            return _with_sha(record, loaded.sha256), [], False
        room.seen.add(loaded.sha256)
        if loaded.kind.kind is not Kind.PDF and claims_pdf(name, attachment.declared_type):
            out.notes.append(f"{name} is not a PDF despite its name; I read it as {loaded.kind.label}.")
        parts, notes = await self._parts(loaded, room, options, wire_format)
        out.notes.extend(notes)
        if not parts:
            return record, [], False
        if await self._keep(loaded, out):
            record = _with_sha(record, loaded.sha256)
        return record, parts, loaded.kind.kind is Kind.PDF

    # -- downloading and typing ------------------------------------------------------------------

    async def _load(self, attachment: Attachment, budget: DownloadBudget) -> _Loaded:
        name = attachment.name
        limit, per_request = budget.allowance()
        shown_limit = budget.total if per_request else limit
        if limit <= 0 or (attachment.size is not None and attachment.size > limit):
            raise FileTooLarge(shown_limit, size=attachment.size, per_request=per_request, name=name)
        try:
            async with asyncio.timeout(self.settings.parley_file_timeout):
                data = await attachment.fetch(limit)
        except TimeoutError:
            raise DownloadFailed("the download timed out", name=name) from None
        except FileTooLarge as exc:
            raise FileTooLarge(shown_limit, size=exc.size, per_request=per_request, name=name) from None
        except FileError:
            raise
        except Exception as exc:
            log.exception("fetching %s failed", name)
            raise DownloadFailed("the download failed", name=name, detail=str(exc)) from None
        if len(data) > limit:
            raise FileTooLarge(shown_limit, per_request=per_request, name=name)
        budget.spend(len(data))
        if not data:
            raise _EmptyFile(name=name)
        sha256, kind = await asyncio.to_thread(_digest_and_sniff, data)
        if kind.kind is Kind.UNKNOWN:
            if claims_pdf(name, attachment.declared_type):
                raise _NotAPdf(name=name)
            raise _Unsupported(name=name)
        return _Loaded(name, data, sha256, kind)

    async def _keep(self, loaded: _Loaded, out: PreparedFiles) -> bool:
        """Store the bytes for follow-up turns; False if they are too large to keep (or the store
        failed, which must not cost the answer)."""
        size = len(loaded.data)
        if size > self.settings.parley_file_store_max_bytes:
            out.notes.append(
                f"{loaded.name} is larger than the {megabytes(self.settings.parley_file_store_max_bytes)} "
                "Parley keeps, so it won't be available for follow-up questions in this thread."
            )
            return False
        cached = self._texts.get(loaded.sha256)
        try:
            if not await self.store.blobs.exists(loaded.sha256):
                # With its text, when known, in the same write.
                await self.store.blobs.put(loaded.sha256, loaded.data, cached[0] if cached else None)
                await release_free_memory()
        except StoreError as exc:
            log.error("could not keep %s: %s", loaded.name, exc)
            return False
        return True

    # -- parts -----------------------------------------------------------------------------------

    async def _parts(
        self, loaded: _Loaded, room: _Room, options: ModelOptions, wire_format: WireFormat
    ) -> tuple[list[Part], list[str]]:
        """The parts for one file, and the notes the user should see about it."""
        kind = loaded.kind
        name = loaded.name
        if kind.kind is Kind.PDF:
            return await self._pdf_parts(loaded, room, options)
        if kind.kind is Kind.IMAGE:
            assert kind.media_type is not None
            limit = wire.image_limit(wire_format)
            encoded = wire.encoded_size(len(loaded.data))
            if len(loaded.data) > limit:
                return [], [
                    f"I couldn't use {name}: it is {megabytes(len(loaded.data), up=True)}, "
                    f"and this model takes images up to {megabytes(limit)}."
                ]
            if encoded > room.encoded_bytes:
                return [], [f"I couldn't use {name}: it didn't fit in this request beside the other files."]
            room.encoded_bytes -= encoded
            return [wire.image_part(name, loaded.data, kind.media_type)], []
        text = kind.text if kind.text is not None else ""
        return self._text_parts(name, text, room)

    def _text_parts(self, name: str, text: str, room: _Room) -> tuple[list[Part], list[str]]:
        if room.text_chars <= 0:
            return [], [f"I couldn't use {name}: there was no room left for more text in this request."]
        notes = []
        if len(text) > room.text_chars:
            text = text[: room.text_chars]
            notes.append(_cut_note(name, len(text)))
        room.text_chars -= len(text)
        return [wire.text_file_part(name, text)], notes

    async def _pdf_parts(
        self, loaded: _Loaded, room: _Room, options: ModelOptions
    ) -> tuple[list[Part], list[str]]:
        name = loaded.name
        try:
            info = await self._inspect(loaded.sha256, loaded.data, name)
            why_not = _why_not_document(name, info, len(loaded.data), room, options)
            if why_not is None:
                data = loaded.data
                if info.encrypted:
                    async with self._heavy:
                        data = await asyncio.to_thread(decrypted_copy, data, name=name)
                encoded = wire.encoded_size(len(data))
                if encoded <= room.encoded_bytes:
                    room.pages -= info.pages
                    room.encoded_bytes -= encoded
                    return [wire.document_part(name, data)], []
                why_not = f"{name} didn't fit in this request beside the other files"
            return await self._pdf_text(loaded, room, why_not)
        except FileError as exc:
            return [], [exc.sentence(name)]

    async def _pdf_text(self, loaded: _Loaded, room: _Room, why_not: str) -> tuple[list[Part], list[str]]:
        """The extracted-text fallback, with the note that says why and what is lost."""
        name = loaded.name
        text, truncated = await self._extracted(loaded.sha256, loaded.data, name)
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
            notes.append(_cut_note(name, len(text)))
        room.text_chars -= len(text)
        return [wire.extracted_text_part(name, text)], notes

    async def _inspect(self, sha256: str, data: bytes, name: str) -> PdfInfo:
        info = self._pdf_info.get(sha256)
        if info is None:
            async with self._heavy:
                info = await asyncio.to_thread(inspect_pdf, data, name=name)
            self._pdf_info[sha256] = info
            while len(self._pdf_info) > _PDF_INFO_CACHE:
                self._pdf_info.popitem(last=False)
        else:
            self._pdf_info.move_to_end(sha256)
        return info

    async def _extracted(self, sha256: str, data: bytes, name: str) -> tuple[str, bool]:
        """(text, cut at the budget): extracted once per file, remembered here and in the store."""
        limit = self.settings.parley_file_text_chars
        cached = self._texts.get(sha256)
        if cached is not None:
            self._texts.move_to_end(sha256)
            return cached
        try:
            kept = await self.store.blobs.text(sha256)
        except StoreError:
            kept = None
        if kept is not None:
            found = (kept, len(kept) >= limit)
        else:
            async with self._heavy:
                extracted = await asyncio.to_thread(extract_text, data, max_chars=limit, name=name)
            await release_free_memory()
            found = (extracted.text, extracted.truncated)
            # Kept bytes get their text now (a no-op for bytes not kept yet: _keep adds it). The
            # bytes live in a table of their own, so this never rewrites the file.
            try:
                await self.store.blobs.add_text(sha256, extracted.text)
            except StoreError as exc:
                log.warning("could not keep the text of %s: %s", name, exc)
        self._texts[sha256] = found
        while len(self._texts) > _TEXT_CACHE:
            self._texts.popitem(last=False)
        return found

    # -- thread context and memory -----------------------------------------------------------------

    async def _context_files(
        self,
        conversation_id: int,
        context: Sequence[ContextMessage],
        current: Sequence[Attachment],
        budget: DownloadBudget,
        out: PreparedFiles,
    ) -> None:
        """Download the files of context messages once and link them to those stored messages."""
        with_files = [c for c in context if c.attachments and c.platform_id]
        if not with_files:
            return
        current_ids = {a.source_id for a in current if a.source_id}
        try:
            stored = await self.store.history.known(conversation_id, [c.platform_id for c in with_files])
        except StoreError as exc:
            log.error("thread files skipped: %s", exc)
            return
        for item in with_files:
            found = stored.get(item.platform_id)
            if found is None or found.attachments > 0:
                continue  # not stored (the message being answered), or its files are linked already
            records: list[AttachmentRecord] = []
            for attachment in item.attachments:
                if attachment.source_id and attachment.source_id in current_ids:
                    continue
                if not budget.admit():
                    log.info("thread file %s skipped: the message's file budget is spent", attachment.name)
                    continue
                records.append(await self._context_file(attachment, budget, out))
            try:
                await self.store.blobs.attach(found.id, records)
            except StoreError as exc:
                log.error("could not link thread files: %s", exc)

    async def _context_file(
        self, attachment: Attachment, budget: DownloadBudget, out: PreparedFiles
    ) -> AttachmentRecord:
        try:
            loaded = await self._load(attachment, budget)
            if loaded.kind.kind is Kind.PDF:
                await self._inspect(loaded.sha256, loaded.data, attachment.name)
        except FileError as exc:
            out.notes.append(exc.sentence(attachment.name))
            return AttachmentRecord.from_attachment(attachment)
        record = AttachmentRecord(attachment.name, loaded.kind.media_type, len(loaded.data))
        if await self._keep(loaded, out):
            record = _with_sha(record, loaded.sha256)
        return record

    async def _earlier(
        self, conversation_id: int, room: _Room, options: ModelOptions, wire_format: WireFormat
    ) -> list[Part]:
        """Earlier files, newest first while they fit, then put back in upload order."""
        try:
            stored = await self.store.blobs.files(conversation_id, _EARLIER_ROWS)
        except StoreError as exc:
            log.error("earlier files skipped: %s", exc)
            return []
        chosen: list[list[Part]] = []
        left_out: list[str] = []
        count = 0
        for row in stored:
            if row.sha256 is None or row.sha256 in room.seen:
                continue
            room.seen.add(row.sha256)
            if count >= self.settings.parley_files_max_count:
                left_out.append(row.name)
                continue
            found = await self._earlier_parts(row, room, options, wire_format)
            if found is None:
                continue  # no longer kept: retention removed it
            if found:
                chosen.append(found)
                count += 1
            else:
                left_out.append(row.name)
        parts = wire.cache_last([part for group in reversed(chosen) for part in group])
        if left_out:
            # Tells the model what it can't see, so it says so instead of guessing.
            parts.append(
                TextPart(
                    "Files shared earlier in this conversation but not included here (no room): "
                    f"{', '.join(reversed(left_out))}."
                )
            )
        return parts

    async def _earlier_parts(
        self, row: StoredAttachment, room: _Room, options: ModelOptions, wire_format: WireFormat
    ) -> list[Part] | None:
        """Parts for one stored file ([] if it doesn't fit, None if its bytes are gone)."""
        assert row.sha256 is not None
        if row.media_type == PDF_MEDIA_TYPE and self._text_anyway(row, room, options):
            # Its text is all that can go: don't load (and copy) the whole file for it.
            text = await self._known_text(row.sha256)
            if text is not None:
                return self._earlier_text(row.name, text, room)
        try:
            blob = await self.store.blobs.get(row.sha256)
        except StoreError as exc:
            log.error("earlier file %s skipped: %s", row.name, exc)
            return None
        if blob is None:
            return None
        kind = sniff_stored(row.media_type, blob.data)
        loaded = _Loaded(row.name, blob.data, row.sha256, kind)
        if kind.kind is Kind.PDF:
            try:
                info = await self._inspect(row.sha256, blob.data, row.name)
            except FileError:
                return []
            why_not = _why_not_document(row.name, info, len(blob.data), room, options)
            if why_not is None:
                parts, _ = await self._pdf_parts(loaded, room, options)
                return parts
            if room.text_chars <= 0:
                return []
            parts, _ = await self._pdf_text(loaded, room, why_not)
            return parts
        if kind.kind in (Kind.IMAGE, Kind.TEXT):
            parts, _ = await self._parts(loaded, room, options, wire_format)
            return parts
        return []

    def _text_anyway(self, row: StoredAttachment, room: _Room, options: ModelOptions) -> bool:
        """Whether a stored PDF can only go as text, judged without its bytes."""
        assert row.sha256 is not None
        if not options.documents:
            return True
        if row.size is not None and wire.encoded_size(row.size) > min(
            options.max_pdf_bytes, room.encoded_bytes
        ):
            return True
        info = self._pdf_info.get(row.sha256)
        return info is not None and info.pages > min(options.max_pdf_pages, room.pages)

    async def _known_text(self, sha256: str) -> str | None:
        cached = self._texts.get(sha256)
        if cached is not None:
            return cached[0]
        try:
            return await self.store.blobs.text(sha256)
        except StoreError:
            return None

    @staticmethod
    def _earlier_text(name: str, text: str, room: _Room) -> list[Part]:
        if room.text_chars <= 0 or not text.strip():
            return []
        text = text[: room.text_chars]
        room.text_chars -= len(text)
        return [wire.extracted_text_part(name, text)]

    # -- retention -------------------------------------------------------------------------------

    async def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + _PRUNE_EVERY
        cutoff = utcnow() - timedelta(days=self.settings.parley_file_retention_days)
        try:
            removed = await self.store.blobs.prune(cutoff)
        except StoreError as exc:
            log.warning("file retention sweep failed: %s", exc)
            return
        if removed:
            days = self.settings.parley_file_retention_days
            log.info("removed %d stored files older than %g days", removed, days)


class _EmptyFile(FileError):
    def sentence(self, name: str | None = None) -> str:
        return f"I couldn't read {name or self.name}: it is empty."


class _NotAPdf(FileError):
    def sentence(self, name: str | None = None) -> str:
        return (
            f"{name or self.name} is not a PDF despite its name, and not a file Parley can read "
            f"({WHAT_PARLEY_READS})."
        )


class _Unsupported(FileError):
    def sentence(self, name: str | None = None) -> str:
        return f"I can't read {name or self.name}: Parley reads {WHAT_PARLEY_READS}."


def _cut_note(name: str, chars: int) -> str:
    return f"The text of {name} is too long to send whole: I used the first {chars:,} characters."


def _with_sha(record: AttachmentRecord, sha256: str) -> AttachmentRecord:
    return AttachmentRecord(record.name, record.media_type, record.size, sha256)


def _digest_and_sniff(data: bytes) -> tuple[str, Sniffed]:
    return hashlib.sha256(data).hexdigest(), sniff(data)


def sniff_stored(media_type: str | None, data: bytes) -> Sniffed:
    """The kind of a stored file: its recorded type, checked against the bytes (cheaply)."""
    if media_type == "application/pdf" and data.startswith(b"%PDF-"):
        return Sniffed(Kind.PDF, media_type, "a PDF")
    if media_type and media_type.startswith("image/"):
        return sniff(data[:64]) if data else Sniffed(Kind.UNKNOWN, None, "")
    if media_type == "text/plain":
        text = decode_text(data)
        if text is not None:
            return Sniffed(Kind.TEXT, media_type, "a text file", text)
    return sniff(data)


def _why_not_document(name: str, info: PdfInfo, size: int, room: _Room, options: ModelOptions) -> str | None:
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
