"""Pictures a tool made (``generate_image``), kept with the reply and shown where it is written.

Each picture is stored content-addressed like an upload and attached to the reply's row, so a
follow-up ("make it blue") finds it among the thread's earlier files and a model that reads
images receives it again. Then it is added to the reply through the surface's
:class:`~bot.render.surface.Uploads` (Slack: an upload into the thread; Discord: an attachment of
the reply's message; the console: a file in the working directory). Nothing here raises: a
picture that cannot be stored or shown becomes a short note in the reply, and a log line.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import PurePath

from bot import notes as say
from bot.render.surface import ReplySurface, Uploads
from bot.store import AttachmentRecord, Store
from bot.tools import OutFile

log = logging.getLogger("parley.conversation")


async def keep(store: Store, reply_id: int, files: Sequence[OutFile]) -> None:
    """Store ``files`` and attach them to reply ``reply_id``: the thread's files from now on."""
    records = []
    for file in files:
        digest = hashlib.sha256(file.data).hexdigest()
        try:
            await store.blobs.put(digest, file.data)
        except Exception as exc:
            log.warning("could not store the picture %s: %s", file.name, exc)
            continue
        records.append(AttachmentRecord(file.name, file.media_type, len(file.data), digest))
    try:
        await store.blobs.attach(reply_id, records)
    except Exception as exc:
        log.warning("could not attach %d pictures to reply %s: %s", len(records), reply_id, exc)


async def show(surface: ReplySurface, files: Sequence[OutFile]) -> list[str]:
    """Add ``files`` to the reply on its platform; the notes the reply's text should carry.

    A surface that answers with the file's own name (the console, where the platform gives no
    ref) gets that name in the reply: nothing else shows the user where the picture is.
    """
    if not files:
        return []
    if not isinstance(surface, Uploads):
        return [say.PICTURE_NOT_SHOWN if len(files) == 1 else say.PICTURES_NOT_SHOWN]
    notes: list[str] = []
    for file in files:
        try:
            ref = await surface.upload(file.name, file.data, file.media_type)
        except Exception as exc:
            log.warning("could not attach the picture %s to the reply: %r", file.name, exc)
            notes.append(say.picture_failed(file.name))
            continue
        if _is_file_name(ref, file.name):
            notes.append(say.picture_saved(ref))
    return notes


def _is_file_name(ref: str, name: str) -> bool:
    """Whether an upload's answer is the name the file was saved under (``name`` or a variant of
    it such as ``name-2.png``), not a platform's ref for a message or file."""
    wanted, got = PurePath(name), PurePath(ref)
    return got.suffix == wanted.suffix and got.stem.startswith(wanted.stem) and "/" not in ref
