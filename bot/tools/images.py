"""``generate_image``: one picture from the gateway, attached to the reply.

The model writes the prompt; the gateway's image model (``PARLEY_IMAGE_MODEL``) draws it. The
picture comes back as base64 or as a URL, which is fetched through the same bounded, checked
fetch as ``read_url`` (an upstream URL is still an address Parley did not choose). The bytes
must be an image by their magic, whatever the answer claimed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from bot.files.errors import FileError
from bot.files.fetch import AllowedHosts, fetch_url
from bot.files.sniff import image_type
from bot.providers.base import ToolSpec
from bot.providers.errors import ProviderError
from bot.providers.images import GeneratedImage
from bot.tools.base import OutFile, Output, ToolContext, ToolFailed, ToolUsage

SPEC = ToolSpec(
    name="generate_image",
    description=(
        "Draw a picture from a text description and attach it to your reply. Describe the "
        "subject, style and composition in the prompt. The user sees the picture; you only get "
        "a note that it was attached."
    ),
    parameters={
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "description": "What to draw, in detail"},
            "size": {
                "type": "string",
                "description": "Width x height in pixels: 1024x1024 (square), 1536x1024 (landscape) "
                "or 1024x1536 (portrait)",
            },
        },
        "required": ["prompt"],
        "additionalProperties": False,
    },
)
_SIZE = re.compile(r"auto|[0-9]{3,4}x[0-9]{3,4}")
# Discord takes 10 MiB per attachment by default; a generated picture is a few MB.
MAX_PICTURE_BYTES = 20 * 1024 * 1024
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


class ImageMaker(Protocol):
    """What the tool needs of :class:`~bot.providers.gateway.Gateway`."""

    async def generate_image(self, prompt: str, *, model: str, size: str) -> GeneratedImage: ...


class GenerateImage:
    source = "built-in"

    def __init__(
        self,
        maker: ImageMaker | None,
        client: httpx.AsyncClient,
        *,
        model: str,
        default_size: str,
        timeout: float,
        allow_hosts: frozenset[str],
        fetch_timeout: float,
    ) -> None:
        self._maker = maker
        self._client = client
        self._model = model
        self._default_size = default_size
        self._timeout = timeout
        self._allowed = AllowedHosts.web(allow_hosts)
        self._fetch_timeout = fetch_timeout

    @property
    def spec(self) -> ToolSpec:
        return SPEC

    @property
    def timeout(self) -> float | None:
        return self._timeout

    def status(self, arguments: Mapping[str, Any]) -> str:
        return "Drawing a picture"

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> Output:
        prompt = str(arguments.get("prompt", "")).strip()
        if not prompt:
            raise ToolFailed("generate_image needs a prompt describing the picture.")
        size = str(arguments.get("size") or self._default_size).strip().lower()
        if not _SIZE.fullmatch(size):
            raise ToolFailed(f"{size[:40]!r} is not a size: give width x height, e.g. 1024x1024.")
        if self._maker is None:
            raise ToolFailed("Pictures cannot be made here (no gateway).")
        try:
            image = await self._maker.generate_image(prompt, model=self._model, size=size)
        except ProviderError as exc:
            raise ToolFailed(f"The picture could not be made: {exc.user_message}") from None
        data = image.data if image.data is not None else await self._download(image.url or "")
        media_type = image_type(data)
        if media_type is None:
            raise ToolFailed(
                "The image model answered something that is not a PNG, JPEG, GIF or WebP picture."
            )
        name = f"picture-{hashlib.sha256(data).hexdigest()[:12]}.{_EXTENSIONS[media_type]}"
        text = f"The picture was made and attached to the reply as {name}."
        if image.revised_prompt:
            text += f" The image model drew it from this prompt: {image.revised_prompt}"
        return Output(
            text=text,
            source="generate_image",
            files=(OutFile(name=name, media_type=media_type, data=data),),
            usage=ToolUsage(model=self._model, images=1),
            trusted=True,
        )

    async def _download(self, url: str) -> bytes:
        try:
            return await fetch_url(
                self._client,
                url,
                allowed=self._allowed,
                max_bytes=MAX_PICTURE_BYTES,
                time_limit=self._fetch_timeout,
                name="the picture",
            )
        except FileError as exc:
            reason = getattr(exc, "reason", "") or exc.detail
            raise ToolFailed(f"The picture was made but could not be downloaded ({reason}).") from None
