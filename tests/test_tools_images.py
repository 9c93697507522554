"""generate_image through the real httpx and Gateway against the fake gateway (and the page
server for URL answers): the picture byte-exact, the request as the contract says, failures as
sentences."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.providers.base import ToolCall
from bot.providers.gateway import Gateway
from bot.settings import load_settings
from bot.tools import ToolBox, ToolContext, ToolUsage, build_toolbox
from bot.types import Author, ConversationKey
from tests.fakes.gateway import IMAGES_PATH, FakeGateway, Reply
from tests.fakes.pages import PageServer
from tests.files_helpers import png

CTX = ToolContext(ConversationKey("discord", "g1", "c1", "t1"), Author("u1", "Ada"))
PICTURE = png(96, 64, noise=True)


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway() as gw:
        gw.image = PICTURE
        yield gw


@pytest.fixture
async def make(gateway: FakeGateway, tmp_path: Path) -> AsyncIterator[Any]:
    opened: list[tuple[Gateway, ToolBox]] = []

    def build(**env: str) -> ToolBox:
        settings = load_settings(
            {
                "APICORE_BASE_URL": gateway.url,
                "APICORE_API_KEY": gateway.api_key or "",
                "PARLEY_TOOLS": "generate_image",
                **env,
            },
            cwd=tmp_path,
        )
        gw = Gateway(settings)
        tools = build_toolbox(settings, gw)
        opened.append((gw, tools))
        return tools

    yield build
    for gw, tools in opened:
        await tools.aclose()
        await gw.aclose()


def draw(arguments: str = '{"prompt": "a lighthouse at dusk, watercolour"}') -> ToolCall:
    return ToolCall("call_img", "generate_image", arguments)


async def test_a_b64_picture_is_attached_byte_exact(make: Any, gateway: FakeGateway) -> None:
    outcome = await make().run(draw(), CTX)
    assert not outcome.is_error, outcome.result.content
    (picture,) = outcome.files
    assert picture.data == PICTURE
    assert picture.media_type == "image/png"
    assert picture.name == f"picture-{hashlib.sha256(PICTURE).hexdigest()[:12]}.png"
    assert outcome.result.content == f"The picture was made and attached to the reply as {picture.name}."
    assert outcome.usage == ToolUsage(model="gpt-image-1", images=1)
    (request,) = gateway.requests
    assert request.path == IMAGES_PATH
    assert request.header("Authorization") == f"Bearer {gateway.api_key}"
    assert request.json == {
        "model": "gpt-image-1",
        "prompt": "a lighthouse at dusk, watercolour",
        "n": 1,
        "size": "1024x1024",
    }


async def test_the_model_and_size_settings_and_arguments(make: Any, gateway: FakeGateway) -> None:
    tools = make(PARLEY_IMAGE_MODEL="dall-e-3", PARLEY_IMAGE_SIZE="1792x1024")
    await tools.run(draw(), CTX)
    await tools.run(draw('{"prompt": "a cat", "size": "1024x1536"}'), CTX)
    assert [(r.json["model"], r.json["size"]) for r in gateway.requests] == [
        ("dall-e-3", "1792x1024"),
        ("dall-e-3", "1024x1536"),
    ]


async def test_a_url_answer_is_fetched_through_the_checked_fetch(
    make: Any, gateway: FakeGateway, pages: PageServer
) -> None:
    pages.picture = PICTURE
    gateway.image_url = f"{pages.url}/picture.png"
    outcome = await make(PARLEY_FETCH_ALLOW_HOSTS=f"127.0.0.1:{pages.port}").run(draw(), CTX)
    assert not outcome.is_error, outcome.result.content
    assert outcome.files[0].data == PICTURE
    assert pages.paths == ["/picture.png"]


async def test_a_url_answer_pointing_inside_is_refused(
    make: Any, gateway: FakeGateway, pages: PageServer
) -> None:
    gateway.image_url = f"{pages.url}/picture.png"
    outcome = await make().run(draw(), CTX)
    assert outcome.is_error and not outcome.files
    assert outcome.result.content == (
        "The picture was made but could not be downloaded (host 127.0.0.1 is an internal address)."
    )
    assert pages.requests == []


@pytest.mark.parametrize(
    ("reply", "sentence"),
    [
        (Reply.http_error(429, "slow down"), "The model is rate limited right now; try again shortly."),
        (Reply.http_error(403, "额度不足 quota insufficient"), "The gateway quota is used up; ask an admin"),
        (
            Reply.http_error(400, "Your prompt was rejected by the safety system"),
            "The gateway rejected the request: Your prompt was rejected by the safety system.",
        ),
    ],
)
async def test_gateway_refusals_are_sentences(
    make: Any, gateway: FakeGateway, reply: Reply, sentence: str
) -> None:
    gateway.script_path(IMAGES_PATH, reply)
    outcome = await make().run(draw(), CTX)
    assert outcome.is_error and not outcome.files
    assert outcome.result.content.startswith(f"The picture could not be made: {sentence}")
    assert len(gateway.requests) == 1  # a picture costs money: never retried


async def test_bytes_that_are_not_a_picture_are_refused(make: Any, gateway: FakeGateway) -> None:
    gateway.image = b"<html>not a picture</html>"
    outcome = await make().run(draw(), CTX)
    assert outcome.result.content == (
        "The image model answered something that is not a PNG, JPEG, GIF or WebP picture."
    )


@pytest.mark.parametrize(
    ("arguments", "sentence"),
    [
        ('{"prompt": "   "}', "generate_image needs a prompt describing the picture."),
        ('{"prompt": "a cat", "size": "huge"}', "'huge' is not a size: give width x height, e.g. 1024x1024."),
    ],
)
async def test_bad_arguments_send_nothing(
    make: Any, gateway: FakeGateway, arguments: str, sentence: str
) -> None:
    outcome = await make().run(draw(arguments), CTX)
    assert outcome.result.content == sentence
    assert gateway.requests == []
