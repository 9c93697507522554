"""A file added to a reply on Slack (a picture a tool made): uploaded into the reply's thread.

Slack's external upload flow, which replaced ``files.upload``: ``files.getUploadURLExternal``
(name and length), the bytes POSTed to the URL it returns, then ``files.completeUploadExternal``
with the channel and thread, which shares the file there as a message from the bot. slack_sdk's
``files_upload_v2`` makes the three calls. Scope ``files:write``; without it the upload is
refused and the core says so in the reply.
"""

from __future__ import annotations

from slack_sdk.errors import SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.calls import SlackRefused, slack_call
from bot.render.surface import SurfaceError


class UploadRefused(SurfaceError):
    """Slack refused the file (``error`` as Slack said it, e.g. ``missing_scope``)."""

    def __init__(self, error: str) -> None:
        super().__init__(f"file upload: {error}")
        self.error = error


async def upload_file(
    client: AsyncWebClient, *, channel: str, thread_ts: str | None, name: str, data: bytes
) -> str:
    """Share ``data`` as file ``name`` in ``channel`` (in the thread ``thread_ts`` when given);
    returns the file's id. Raises :class:`UploadRefused`, or ``RateLimited`` on a 429."""
    try:
        upload = client.files_upload_v2(
            channel=channel, thread_ts=thread_ts, file=data, filename=name, title=name
        )
        response = await slack_call("file upload", upload)
    except SlackRefused as exc:
        raise UploadRefused(exc.error) from exc
    except SlackRequestError as exc:
        # The bytes were refused at the upload URL (slack_sdk's own error, not an API answer).
        raise UploadRefused("upload_failed") from exc
    files = response.get("files") or []
    first = files[0] if isinstance(files, list) and files and isinstance(files[0], dict) else {}
    return str(first.get("id") or name)
