"""Pictures a tool made, as a unit: kept with the reply like an upload, shown through the surface's
Uploads, and a note (never a crash) where a surface has none or refuses the file."""

from __future__ import annotations

import hashlib

from bot import notes as say
from bot import pictures
from bot.render.surface import SurfaceError
from bot.store import Store
from bot.tools import OutFile
from bot.types import Author, ConversationKey
from tests.fakes.surface import PlainSurface, RecordingSurface
from tests.tool_helpers import random_png

PICTURE = OutFile("picture-abc.png", "image/png", random_png(side=8))


class Refusing(PlainSurface):
    async def upload(self, name: str, data: bytes, media_type: str) -> str:
        raise SurfaceError("file upload: missing_scope")


class SavesFiles(PlainSurface):
    """The console's way: the answer is the name the file was saved under."""

    async def upload(self, name: str, data: bytes, media_type: str) -> str:
        return name.replace(".png", "-2.png")


async def test_a_platform_shows_the_picture_itself_so_no_note_is_needed() -> None:
    surface = RecordingSurface()
    assert await pictures.show(surface, [PICTURE]) == []
    [uploaded] = surface.uploads
    assert (uploaded.name, uploaded.media_type, uploaded.data) == (PICTURE.name, "image/png", PICTURE.data)


async def test_a_surface_that_saves_files_gets_the_name_in_the_reply() -> None:
    assert await pictures.show(SavesFiles(), [PICTURE]) == [say.picture_saved("picture-abc-2.png")]


async def test_no_uploads_or_a_refused_one_is_a_note() -> None:
    assert await pictures.show(PlainSurface(), [PICTURE]) == [say.PICTURE_NOT_SHOWN]
    assert await pictures.show(PlainSurface(), [PICTURE, PICTURE]) == [say.PICTURES_NOT_SHOWN]
    assert await pictures.show(Refusing(), [PICTURE]) == [say.picture_failed("picture-abc.png")]
    assert await pictures.show(PlainSurface(), []) == []


async def test_pictures_are_kept_with_the_reply_like_uploads(store: Store) -> None:
    conversation = await store.conversations.find_or_create(ConversationKey("test", "W", "C", "T"))
    reply = await store.replies.begin(conversation.id, Author("U1", "Ann"), "draw", model="m")
    await pictures.keep(store, reply, [PICTURE])
    [kept] = await store.blobs.files(conversation.id, 10)
    assert (kept.message_id, kept.name, kept.media_type) == (reply, PICTURE.name, "image/png")
    assert kept.sha256 == hashlib.sha256(PICTURE.data).hexdigest()
    blob = await store.blobs.get(kept.sha256)
    assert blob is not None and blob.data == PICTURE.data
    await pictures.keep(store, reply, [PICTURE])  # the same picture again: stored once, no error
