"""Slack's external upload flow, which replaced ``files.upload``:

1. ``files.getUploadURLExternal`` (``filename``, ``length`` > 0; optional ``alt_txt`` up to 1000
   characters, ``snippet_type``) → ``upload_url``, ``file_id``. Scope ``files:write``.
2. POST the bytes to ``upload_url`` (no token), raw or as a multipart form; the fake answers 200
   ``OK - <length>``, or 400 when the number of bytes differs from ``length`` (unverified: Slack
   does not document that answer) and the upload stays incomplete.
3. ``files.completeUploadExternal`` (``files`` = JSON ``[{"id", "title"?}]``, optional
   ``channel_id``, ``thread_ts``, ``initial_comment``; or ``channels``) → ``files`` (full file
   objects). With a channel, the files are shared there: one message from the bot carrying them
   (``initial_comment`` as its text), in the thread when ``thread_ts`` is given. A file id never
   issued, or not uploaded in full, is ``file_not_found``; an unknown channel
   ``channel_not_found``.

The bytes are served at the file's ``url_private`` like any other file (``fs.file_bytes(id)``
returns them byte-exact); ``fs.uploads`` keeps every upload with its state.
"""

from __future__ import annotations

import mimetypes
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from .api_group import ApiGroup
from .model import FakeFile
from .records import ApiError, Handler, Params, invalid_arguments, json_field, require

if TYPE_CHECKING:
    from .server import FakeSlack

ALT_TXT_MAX = 1000


@dataclass
class Upload:
    """One file on its way in: issued, then (maybe) uploaded, then (maybe) completed."""

    file_id: str
    filename: str
    length: int
    ticket: str
    alt_txt: str | None = None
    data: bytes | None = None
    completed: bool = False
    title: str | None = None


class FilesApi(ApiGroup):
    def handlers(self) -> dict[str, Handler]:
        return {
            "files.getUploadURLExternal": self.get_upload_url,
            "files.completeUploadExternal": self.complete_upload,
        }

    async def get_upload_url(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        filename = require(params, "filename")
        raw_length = require(params, "length")
        try:
            length = int(raw_length)
        except ValueError as exc:
            raise invalid_arguments("length must be an integer [json-pointer:/length]") from exc
        if length <= 0:
            raise ApiError("missing_argument")
        alt_txt = params.get("alt_txt") or None
        if alt_txt is not None and len(str(alt_txt)) > ALT_TXT_MAX:
            raise ApiError("alt_txt_too_large")
        upload = Upload(fs.new_file_id(), filename, length, uuid.uuid4().hex, alt_txt)
        fs.uploads[upload.file_id] = upload
        return {"upload_url": f"{fs.base_url}/upload/v1/{upload.ticket}", "file_id": upload.file_id}

    def _entries(self, params: Params) -> list[tuple[Upload, str | None]]:
        files = json_field(params, "files", "invalid_arguments")
        if files is None:
            require(params, "files")
        if not isinstance(files, list) or not files:
            raise invalid_arguments("files must be a non-empty array [json-pointer:/files]")
        out = []
        for entry in files:
            if not isinstance(entry, dict) or not entry.get("id"):
                raise invalid_arguments("each file needs an id [json-pointer:/files]")
            upload = self.fs.uploads.get(str(entry["id"]))
            if upload is None or upload.data is None or upload.completed:
                raise ApiError("file_not_found")
            title = entry.get("title")
            out.append((upload, str(title) if title else None))
        return out

    def _targets(self, params: Params) -> list[str]:
        names = [str(params["channel_id"])] if params.get("channel_id") else []
        if not names and params.get("channels"):
            names = [c for c in str(params["channels"]).split(",") if c]
        for name in names:
            if name not in self.fs.channels:
                raise ApiError("channel_not_found")
        return names

    async def complete_upload(self, params: Params) -> dict[str, Any]:
        fs = self.fs
        entries = self._entries(params)
        targets = self._targets(params)
        thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
        if thread_ts is not None and len(targets) != 1:
            raise invalid_arguments("thread_ts needs exactly one channel")
        stored = [self._store(upload, title) for upload, title in entries]
        comment = str(params.get("initial_comment") or "")
        for channel in targets:
            self._share(channel, thread_ts, stored, comment)
        return {"files": [f.to_api(fs.identity.team_id) for f in stored]}

    def _store(self, upload: Upload, title: str | None) -> FakeFile:
        fs = self.fs
        assert upload.data is not None
        upload.completed, upload.title = True, title
        mimetype = mimetypes.guess_type(upload.filename)[0] or "application/octet-stream"
        url, download = fs.file_urls(upload.file_id, upload.filename)
        extra: dict[str, Any] = {"alt_txt": upload.alt_txt} if upload.alt_txt else {}
        f = FakeFile(
            id=upload.file_id,
            name=upload.filename,
            mimetype=mimetype,
            filetype=upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else "binary",
            content=upload.data,
            user=fs.identity.bot_user_id,
            url_private=url,
            url_private_download=download,
            title=title or upload.filename,
            extra=extra,
        )
        fs.store_file(f)
        return f

    def _share(self, channel: str, thread_ts: str | None, files: list[FakeFile], comment: str) -> None:
        fs = self.fs
        team = fs.identity.team_id
        msg = fs.store_message(
            channel,
            user=fs.identity.bot_user_id,
            text=comment,
            thread_ts=thread_ts,
            bot=True,
            files=[f.to_api(team) for f in files],
            event="file_share",
        )
        msg.subtype = "file_share"
        kind = "public" if fs.channels[channel].kind == "public" else "private"
        for f in files:
            share = {"ts": msg.ts, "channel_name": fs.channels[channel].name, "team_id": team}
            if thread_ts:
                share["thread_ts"] = thread_ts
            f.extra.setdefault("shares", {}).setdefault(kind, {}).setdefault(channel, []).append(share)
        fs.bot_replied(channel, thread_ts)


async def _read_upload(request: web.Request) -> bytes:
    if not request.content_type.startswith("multipart/"):
        return await request.read()
    reader = await request.multipart()
    data = b""
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and (part.filename is not None or part.name == "file"):
            data = bytes(await part.read())
    return data


async def upload_endpoint(fs: FakeSlack, request: web.Request) -> web.Response:
    """``POST /upload/v1/<ticket>``: the upload URL ``files.getUploadURLExternal`` handed out."""
    ticket = request.match_info["ticket"]
    upload = next((u for u in fs.uploads.values() if u.ticket == ticket), None)
    if upload is None or upload.completed:
        return web.Response(status=404, text="Not Found")
    data = await _read_upload(request)
    if len(data) != upload.length:
        return web.Response(status=400, text=f"length mismatch: expected {upload.length}, got {len(data)}")
    upload.data = data
    return web.Response(text=f"OK - {len(data)}")
