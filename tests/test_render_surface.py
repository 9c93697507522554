"""surface.py: the optional capabilities are recognised by isinstance, as the core checks them."""

from __future__ import annotations

from bot.render.surface import Deletable, SurfaceLimits, Uploads


class _Plain:
    limits = SurfaceLimits(2000)

    def render(self, markdown: str) -> str:
        return markdown

    async def post(self, text: str, *, live: bool) -> str:
        return "1"

    async def edit(self, ref: str, text: str, *, live: bool) -> None:
        return None

    async def set_status(self, status: str | None) -> None:
        return None


class _WithUploads(_Plain):
    def __init__(self) -> None:
        self.files: list[tuple[str, bytes, str]] = []

    async def upload(self, name: str, data: bytes, media_type: str) -> str:
        self.files.append((name, data, media_type))
        return name


async def test_a_surface_that_uploads_is_recognised_and_one_that_does_not_is_not() -> None:
    plain, able = _Plain(), _WithUploads()
    assert not isinstance(plain, Uploads) and not isinstance(plain, Deletable)
    assert isinstance(able, Uploads)
    assert await able.upload("chart.png", b"\x89PNG", "image/png") == "chart.png"
    assert able.files == [("chart.png", b"\x89PNG", "image/png")]
