"""Downloading a file within the message's budget, typing it by content, and keeping it for
follow-up turns (content-addressed, with its text when known)."""

from __future__ import annotations

import asyncio
import logging

from bot.files.errors import (
    DownloadFailed,
    EmptyFile,
    FileError,
    FileTooLarge,
    NotAPdf,
    Unsupported,
    megabytes,
)
from bot.files.fetch import DownloadBudget
from bot.files.loaded import Loaded, digest_and_sniff
from bot.files.pdf import release_free_memory
from bot.files.sniff import Kind, claims_csv, claims_pdf
from bot.files.texts import TextMemory
from bot.settings import Settings
from bot.store import Store, StoreError
from bot.types import Attachment

log = logging.getLogger("parley.files")


class Intake:
    def __init__(self, settings: Settings, store: Store, texts: TextMemory) -> None:
        self.settings = settings
        self.store = store
        self.texts = texts

    async def load(self, attachment: Attachment, budget: DownloadBudget) -> Loaded:
        """The file's bytes and kind; raises a :class:`FileError` that names it."""
        name = attachment.name
        limit, per_request = budget.allowance()
        shown_limit = budget.total if per_request else limit
        if limit <= 0 or (attachment.size is not None and attachment.size > limit):
            raise FileTooLarge(shown_limit, size=attachment.size, per_request=per_request, name=name)
        data = await self._fetch(attachment, limit, shown_limit, per_request)
        budget.spend(len(data))
        if not data:
            raise EmptyFile(name=name)
        csv_hint = claims_csv(name, attachment.declared_type)
        sha256, kind = await asyncio.to_thread(digest_and_sniff, data, csv_hint)
        if kind.kind is Kind.UNKNOWN:
            if claims_pdf(name, attachment.declared_type):
                raise NotAPdf(name=name)
            raise Unsupported(kind.label, name=name)
        return Loaded(name, data, sha256, kind)

    async def _fetch(self, attachment: Attachment, limit: int, shown_limit: int, per_request: bool) -> bytes:
        name = attachment.name
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
        return data

    async def keep(self, loaded: Loaded, notes: list[str]) -> bool:
        """Store the bytes for follow-up turns; False if they are too large to keep (or the store
        failed, which must not cost the answer)."""
        size = len(loaded.data)
        if size > self.settings.parley_file_store_max_bytes:
            notes.append(
                f"{loaded.name} is larger than the {megabytes(self.settings.parley_file_store_max_bytes)} "
                "Parley keeps, so it won't be available for follow-up questions in this thread."
            )
            return False
        cached = self.texts.cached(loaded.sha256)
        try:
            if not await self.store.blobs.exists(loaded.sha256):
                # With its text, when known, in the same write.
                await self.store.blobs.put(loaded.sha256, loaded.data, cached[0] if cached else None)
                await release_free_memory()
        except StoreError as exc:
            log.error("could not keep %s: %s", loaded.name, exc)
            return False
        return True
