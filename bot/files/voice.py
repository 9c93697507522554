"""Voice notes and audio files: checked against the caps, then transcribed by the gateway once.

The transcript is remembered on the stored blob like extracted text, so the same recording sent
again is not transcribed again. The gateway call itself is the runtime's (a :class:`Transcriber`,
in practice :meth:`bot.providers.gateway.Gateway.transcribe`): this package stays free of it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import PurePath
from typing import Protocol

from bot.files.audio import duration
from bot.files.errors import AudioRefused, megabytes
from bot.files.loaded import Loaded
from bot.files.texts import TextMemory
from bot.providers.errors import ProviderError
from bot.settings import Settings


class Transcriber(Protocol):
    async def transcribe(self, data: bytes, *, filename: str, media_type: str, model: str) -> str:
        """The words spoken in ``data``; raises :class:`~bot.providers.errors.ProviderError`."""
        ...


def clock(seconds: float) -> str:
    """A duration as people say it: "20 minutes", "21 min 5 s", "45 seconds"."""
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    if not minutes:
        return f"{rest} second{'s' if rest != 1 else ''}"
    if not rest:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{minutes} min {rest} s"


def upload_name(name: str, fmt: str) -> str:
    """The file name the gateway sees: the user's stem, plain, with the sniffed format's extension."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePath(name).stem).strip("._")[:60]
    return f"{stem or 'audio'}.{fmt}"


class Voice:
    def __init__(self, settings: Settings, texts: TextMemory, transcriber: Transcriber | None) -> None:
        self.settings = settings
        self.texts = texts
        self.transcriber = transcriber

    async def transcript(self, loaded: Loaded) -> str:
        """The words in ``loaded`` ("" if none); raises :class:`AudioRefused` with the reason."""
        found = await self.texts.known(loaded.sha256, 0)
        if found is not None:
            return found[0]
        await self._check(loaded)
        assert self.transcriber is not None
        media_type = loaded.kind.media_type or "application/octet-stream"
        try:
            text = await self.transcriber.transcribe(
                loaded.data,
                filename=upload_name(loaded.name, loaded.kind.format),
                media_type=media_type,
                model=self.settings.parley_transcribe_model,
            )
        except ProviderError as exc:
            why = exc.user_message.rstrip(".")
            raise AudioRefused(why[:1].lower() + why[1:], name=loaded.name, detail=str(exc)) from None
        text = text.strip()
        await self.texts.remember(loaded.sha256, text, False, name=loaded.name)
        return text

    async def _check(self, loaded: Loaded) -> None:
        name, size = loaded.name, len(loaded.data)
        if self.transcriber is None:
            raise AudioRefused("voice notes can't be transcribed here", name=name)
        limit = self.settings.parley_audio_max_bytes
        if size > limit:
            raise AudioRefused(
                f"it is {megabytes(size, up=True)}, and Parley transcribes audio up to {megabytes(limit)}",
                name=name,
            )
        seconds = await asyncio.to_thread(duration, loaded.data, loaded.kind.format)
        longest = self.settings.parley_audio_max_seconds
        if seconds is not None and seconds > longest:
            raise AudioRefused(
                f"it is {clock(seconds)} long, and Parley transcribes up to {clock(longest)}", name=name
            )
