"""FileService: a message's attachments (and the thread's earlier files) into model parts.

One turn:

1. Download this message's files within the per-message budget (count, bytes, time), type
   them by content, and turn each into what the model's wire format carries: a PDF as a
   document when the model takes it, else its extracted text; an image; a text file inline;
   an office document, book, web page or CSV as Markdown text; a voice note or audio file as
   its transcript, which joins the user's words after any typed text.
2. Files on thread context messages (backfill) are downloaded once and linked to those messages.
3. Files from earlier in the conversation are re-sent, newest first, while they fit the
   request's room, at the front of the prompt with a cache breakpoint, so follow-up questions
   need no re-upload and cost little.

Every file that can't be used yields one honest note for the user. Nothing here raises to the
conversation service for a bad file; only programming errors propagate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.files import parts as wire
from bot.files.convert import Converter
from bot.files.errors import FileError
from bot.files.fetch import DownloadBudget
from bot.files.intake import Intake
from bot.files.loaded import Loaded, Room, cut_note, names, with_sha
from bot.files.memory import ThreadFiles
from bot.files.sniff import Kind, claims_pdf
from bot.files.texts import TextMemory
from bot.files.voice import Transcriber, Voice
from bot.options import ModelOptions, WireFormat
from bot.providers.base import Part, Turn
from bot.settings import Settings
from bot.store import AttachmentRecord, Store
from bot.types import Attachment, ContextMessage

# Kinds that a bare mention asks to have summarized.
_SUMMARIZED = (Kind.PDF, Kind.DOCUMENT)


@dataclass(slots=True)
class PreparedFiles:
    """What the conversation service needs from the files of one turn."""

    parts: list[Part] = field(default_factory=list)  # this message's files, before the question
    earlier: list[Part] = field(default_factory=list)  # earlier files: they lead the prompt
    notes: list[str] = field(default_factory=list)  # for the user, shown before the answer
    # The question to ask and to store with the message: the typed text, then the words of any
    # voice note, or the summarize instruction for a bare document.
    question: str = ""
    records: list[AttachmentRecord] = field(default_factory=list)  # store with the user message
    nothing_to_ask: bool = False  # files came, none was usable, and no question: notes suffice

    def lead(self, turns: Sequence[Turn]) -> list[Turn]:
        """``turns`` with the earlier files at the start of the first user turn."""
        return wire.lead_with(turns, self.earlier)


@dataclass(slots=True)
class _Turn:
    """One turn's working state."""

    budget: DownloadBudget
    room: Room
    options: ModelOptions
    wire_format: WireFormat
    out: PreparedFiles
    summarized: list[str] = field(default_factory=list)
    spoken: list[str] = field(default_factory=list)  # transcripts, in attachment order


class FileService:
    """The core's attachment pipeline (see :class:`bot.turn.FilePipeline`).

    ``transcriber`` (the gateway) turns voice notes into words; without one they are refused
    with a note.
    """

    def __init__(self, settings: Settings, store: Store, *, transcriber: Transcriber | None = None) -> None:
        self.settings = settings
        self.store = store
        self.texts = TextMemory(store)
        self.intake = Intake(settings, store, self.texts)
        self.converter = Converter(settings, self.texts)
        self.voice = Voice(settings, self.texts, transcriber)
        self.thread = ThreadFiles(settings, store, self.intake, self.converter)

    async def prepare(
        self,
        conversation_id: int,
        attachments: Sequence[Attachment],
        model: str,
        *,
        question: str,
        context: Sequence[ContextMessage] = (),
    ) -> PreparedFiles:
        await self.thread.maybe_prune()
        turn = self._start(model, question)
        skipped: list[str] = []
        for attachment in attachments:
            if not turn.budget.admit():
                skipped.append(attachment.name)
                continue
            await self._current(attachment, turn)
        out = turn.out
        if skipped:
            out.notes.append(
                f"I read only the first {turn.budget.count} files of this message; "
                f"skipped: {', '.join(skipped)}."
            )
        out.parts = wire.cache_last(out.parts)
        if context:
            await self.thread.link_context(conversation_id, context, attachments, turn.budget, out.notes)
        out.earlier = await self.thread.earlier(conversation_id, turn.room, turn.options, turn.wire_format)
        self._ask(turn, question)
        out.nothing_to_ask = bool(attachments) and not out.parts and not out.question.strip()
        return out

    def _start(self, model: str, question: str) -> _Turn:
        settings = self.settings
        options = settings.options_for(model)
        budget = DownloadBudget(
            per_file=settings.parley_file_max_bytes,
            total=settings.parley_file_request_max_bytes,
            count=settings.parley_files_max_count,
        )
        room = Room(options.max_pdf_pages, options.max_pdf_bytes, settings.parley_file_text_chars)
        return _Turn(budget, room, options, settings.wire_format(model), PreparedFiles(question=question))

    def _ask(self, turn: _Turn, question: str) -> None:
        """The question: typed words, then spoken ones; a bare document asks for a summary."""
        out = turn.out
        if turn.spoken:
            out.question = "\n\n".join([question.strip(), *turn.spoken]).strip()
        elif not question.strip() and turn.summarized:
            out.question = self.settings.parley_summarize_instruction
            out.notes.append(f"Summary of {names(turn.summarized)}:")

    async def _current(self, attachment: Attachment, turn: _Turn) -> None:
        """One file of this message: its record, and its parts, words or notes."""
        name, out = attachment.name, turn.out
        try:
            loaded = await self.intake.load(attachment, turn.budget)
            if loaded.kind.kind is Kind.PDF:
                await self.converter.inspect(loaded.sha256, loaded.data, name)
        except FileError as exc:
            out.notes.append(exc.sentence(name))
            out.records.append(AttachmentRecord.from_attachment(attachment))
            return
        record = AttachmentRecord(name, loaded.kind.media_type, len(loaded.data))
        if loaded.sha256 in turn.room.seen:
            # The same bytes twice in one message: one copy is enough for the model.
            out.records.append(with_sha(record, loaded.sha256))
            return
        turn.room.seen.add(loaded.sha256)
        if loaded.kind.kind is not Kind.PDF and claims_pdf(name, attachment.declared_type):
            out.notes.append(f"{name} is not a PDF despite its name; I read it as {loaded.kind.label}.")
        used = await self._use(loaded, turn)
        if used and await self.intake.keep(loaded, out.notes):
            record = with_sha(record, loaded.sha256)
        out.records.append(record)

    async def _use(self, loaded: Loaded, turn: _Turn) -> bool:
        """Turn one file into parts (or words); whether anything of it went into the request."""
        out = turn.out
        if loaded.kind.kind is Kind.AUDIO:
            return await self._listen(loaded, turn)
        parts, notes = await self.converter.parts(loaded, turn.room, turn.options, turn.wire_format)
        out.notes.extend(notes)
        out.parts.extend(parts)
        if parts and loaded.kind.kind in _SUMMARIZED:
            turn.summarized.append(loaded.name)
        return bool(parts)

    async def _listen(self, loaded: Loaded, turn: _Turn) -> bool:
        name, out = loaded.name, turn.out
        try:
            words = await self.voice.transcript(loaded)
        except FileError as exc:
            out.notes.append(exc.sentence(name))
            return False
        if not words:
            out.notes.append(f"I couldn't hear any words in {name}.")
            return True  # kept: the same silence sent again needs no second transcription
        room = turn.room
        if room.text_chars <= 0:
            out.notes.append(
                f"I couldn't use what was said in {name}: there was no room left in this request."
            )
            return True
        if len(words) > room.text_chars:
            words = words[: room.text_chars]
            out.notes.append(cut_note(name, len(words)).replace("The text of", "The transcript of"))
        room.text_chars -= len(words)
        turn.spoken.append(words)
        return True
