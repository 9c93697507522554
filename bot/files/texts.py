"""The text Parley got out of a file (extracted from a PDF or document, or a voice note's
transcript), remembered in-process and on the stored blob, so no file is read or transcribed twice."""

from __future__ import annotations

import logging
from collections import OrderedDict

from bot.store import Store, StoreError

log = logging.getLogger("parley.files")

_SIZE = 32  # texts remembered in-process (each at most parley_file_text_chars)


class TextMemory:
    """sha256 → (text, cut at the budget)."""

    def __init__(self, store: Store, size: int = _SIZE) -> None:
        self.store = store
        self.size = size
        self._texts: OrderedDict[str, tuple[str, bool]] = OrderedDict()

    def cached(self, sha256: str) -> tuple[str, bool] | None:
        """In-process only: no database round trip."""
        found = self._texts.get(sha256)
        if found is not None:
            self._texts.move_to_end(sha256)
        return found

    async def known(self, sha256: str, limit: int) -> tuple[str, bool] | None:
        """The text from this process, else from the stored blob (cut when it fills ``limit``)."""
        found = self.cached(sha256)
        if found is not None:
            return found
        try:
            kept = await self.store.blobs.text(sha256)
        except StoreError:
            return None
        if kept is None:
            return None
        found = (kept, len(kept) >= limit)
        self._hold(sha256, found)
        return found

    async def remember(self, sha256: str, text: str, truncated: bool, *, name: str) -> None:
        """Keep ``text`` here and on the blob, if the blob is stored (a no-op otherwise: storing the
        bytes later takes the text from :meth:`cached` in the same write)."""
        self._hold(sha256, (text, truncated))
        try:
            # The bytes live in a table of their own, so this never rewrites the file.
            await self.store.blobs.add_text(sha256, text)
        except StoreError as exc:
            log.warning("could not keep the text of %s: %s", name, exc)

    def _hold(self, sha256: str, found: tuple[str, bool]) -> None:
        self._texts[sha256] = found
        self._texts.move_to_end(sha256)
        while len(self._texts) > self.size:
            self._texts.popitem(last=False)
