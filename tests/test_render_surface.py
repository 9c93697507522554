"""surface.py: the optional capabilities are recognised by isinstance, as the core checks them."""

from __future__ import annotations

from bot.render.surface import Deletable, Uploads
from tests.fakes.surface import PlainSurface


class _WithUploads(PlainSurface):
    def __init__(self) -> None:
        self.files: list[tuple[str, bytes, str]] = []

    async def upload(self, name: str, data: bytes, media_type: str) -> str:
        self.files.append((name, data, media_type))
        return name


async def test_a_surface_that_uploads_is_recognised_and_one_that_does_not_is_not() -> None:
    plain, able = PlainSurface(), _WithUploads()
    assert not isinstance(plain, Uploads) and not isinstance(plain, Deletable)
    assert isinstance(able, Uploads)
    assert await able.upload("chart.png", b"\x89PNG", "image/png") == "chart.png"
    assert able.files == [("chart.png", b"\x89PNG", "image/png")]
