"""Thread memory for files: files on thread context messages are downloaded once and linked to
those messages; files from earlier turns are re-sent, newest first while they fit, at the front
of the prompt with a cache breakpoint; stored files past their retention are swept."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta

from bot.files import parts as wire
from bot.files.convert import Converter, why_not_document
from bot.files.errors import FileError
from bot.files.fetch import DownloadBudget
from bot.files.intake import Intake
from bot.files.loaded import Loaded, Room, sniff_stored, with_sha
from bot.files.sniff import PDF_MEDIA_TYPE, Kind, format_of
from bot.options import ModelOptions, WireFormat
from bot.providers.base import Part, TextPart
from bot.settings import Settings
from bot.store import AttachmentRecord, Store, StoredAttachment, StoreError
from bot.store.models import utcnow
from bot.types import Attachment, ContextMessage

log = logging.getLogger("parley.files")

_EARLIER_ROWS = 50  # stored files looked at per turn, newest first
_PRUNE_EVERY = 3600.0  # seconds between retention sweeps


def _is_audio(media_type: str | None) -> bool:
    # A voice note's transcript is the user's words in the history already: never re-sent.
    return (media_type or "").startswith("audio/") or format_of(media_type) in ("mp4", "webm")


class ThreadFiles:
    def __init__(self, settings: Settings, store: Store, intake: Intake, converter: Converter) -> None:
        self.settings = settings
        self.store = store
        self.intake = intake
        self.converter = converter
        self._next_prune = 0.0

    # -- files on thread context messages ----------------------------------------------------------

    async def link_context(
        self,
        conversation_id: int,
        context: Sequence[ContextMessage],
        current: Sequence[Attachment],
        budget: DownloadBudget,
        notes: list[str],
    ) -> None:
        """Download the files of context messages once and link them to those stored messages."""
        with_files = [c for c in context if c.attachments and c.platform_id]
        if not with_files:
            return
        try:
            stored = await self.store.history.known(conversation_id, [c.platform_id for c in with_files])
        except StoreError as exc:
            log.error("thread files skipped: %s", exc)
            return
        current_ids = {a.source_id for a in current if a.source_id}
        for item in with_files:
            found = stored.get(item.platform_id)
            if found is None or found.attachments > 0:
                continue  # not stored (the message being answered), or its files are linked already
            fresh = [a for a in item.attachments if not (a.source_id and a.source_id in current_ids)]
            records = await self._context_records(fresh, budget, notes)
            try:
                await self.store.blobs.attach(found.id, records)
            except StoreError as exc:
                log.error("could not link thread files: %s", exc)

    async def _context_records(
        self, attachments: Sequence[Attachment], budget: DownloadBudget, notes: list[str]
    ) -> list[AttachmentRecord]:
        records = []
        for attachment in attachments:
            if not budget.admit():
                log.info("thread file %s skipped: the message's file budget is spent", attachment.name)
                continue
            records.append(await self._context_file(attachment, budget, notes))
        return records

    async def _context_file(
        self, attachment: Attachment, budget: DownloadBudget, notes: list[str]
    ) -> AttachmentRecord:
        try:
            loaded = await self.intake.load(attachment, budget)
            if loaded.kind.kind is Kind.PDF:
                await self.converter.inspect(loaded.sha256, loaded.data, attachment.name)
        except FileError as exc:
            notes.append(exc.sentence(attachment.name))
            return AttachmentRecord.from_attachment(attachment)
        record = AttachmentRecord(attachment.name, loaded.kind.media_type, len(loaded.data))
        if loaded.kind.kind is Kind.AUDIO:
            return record  # transcribed only when it is the message being answered
        if await self.intake.keep(loaded, notes):
            record = with_sha(record, loaded.sha256)
        return record

    # -- earlier files ---------------------------------------------------------------------------

    async def earlier(
        self, conversation_id: int, room: Room, options: ModelOptions, wire_format: WireFormat
    ) -> list[Part]:
        """Earlier files, newest first while they fit, then put back in upload order."""
        try:
            stored = await self.store.blobs.files(conversation_id, _EARLIER_ROWS)
        except StoreError as exc:
            log.error("earlier files skipped: %s", exc)
            return []
        chosen: list[list[Part]] = []
        left_out: list[str] = []
        for row in stored:
            if row.sha256 is None or row.sha256 in room.seen or _is_audio(row.media_type):
                continue
            room.seen.add(row.sha256)
            if len(chosen) >= self.settings.parley_files_max_count:
                left_out.append(row.name)
                continue
            found = await self._earlier_parts(row, room, options, wire_format)
            if found:
                chosen.append(found)
            elif found is not None:
                left_out.append(row.name)  # None: no longer kept (retention removed it)
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
        self, row: StoredAttachment, room: Room, options: ModelOptions, wire_format: WireFormat
    ) -> list[Part] | None:
        """Parts for one stored file ([] if it doesn't fit, None if its bytes are gone)."""
        assert row.sha256 is not None
        if self._text_only(row, room, options):
            # Its text is all that can go: don't load (and copy) the whole file for it.
            known = await self.converter.texts.known(row.sha256, self.settings.parley_file_text_chars)
            if known is not None:
                return _earlier_text(row, known[0], room)
        try:
            blob = await self.store.blobs.get(row.sha256)
        except StoreError as exc:
            log.error("earlier file %s skipped: %s", row.name, exc)
            return None
        if blob is None:
            return None
        loaded = Loaded(row.name, blob.data, row.sha256, sniff_stored(row.media_type, blob.data))
        if loaded.kind.kind is Kind.PDF:
            return await self._earlier_pdf(loaded, room, options)
        if loaded.kind.kind in (Kind.IMAGE, Kind.TEXT, Kind.DOCUMENT):
            parts, _ = await self.converter.parts(loaded, room, options, wire_format)
            return parts
        return []

    async def _earlier_pdf(self, loaded: Loaded, room: Room, options: ModelOptions) -> list[Part]:
        try:
            info = await self.converter.inspect(loaded.sha256, loaded.data, loaded.name)
        except FileError:
            return []
        why_not = why_not_document(loaded.name, info, len(loaded.data), room, options)
        if why_not is None:
            parts, _ = await self.converter.pdf_parts(loaded, room, options)
            return parts
        if room.text_chars <= 0:
            return []
        parts, _ = await self.converter.pdf_text(loaded, room, why_not)
        return parts

    def _text_only(self, row: StoredAttachment, room: Room, options: ModelOptions) -> bool:
        """Whether a stored file can only go as its text, judged without its bytes."""
        assert row.sha256 is not None
        fmt = format_of(row.media_type)
        if fmt is not None:
            return True  # a document: its Markdown text is what goes
        if row.media_type != PDF_MEDIA_TYPE:
            return False
        if not options.documents:
            return True
        if row.size is not None and wire.encoded_size(row.size) > min(
            options.max_pdf_bytes, room.encoded_bytes
        ):
            return True
        info = self.converter.known_info(row.sha256)
        return info is not None and info.pages > min(options.max_pdf_pages, room.pages)

    # -- retention -------------------------------------------------------------------------------

    async def maybe_prune(self) -> None:
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


def _earlier_text(row: StoredAttachment, text: str, room: Room) -> list[Part]:
    if room.text_chars <= 0 or not text.strip():
        return []
    text = text[: room.text_chars]
    room.text_chars -= len(text)
    if row.media_type == PDF_MEDIA_TYPE:
        return [wire.extracted_text_part(row.name, text)]
    return [wire.document_text_part(row.name, text)]
