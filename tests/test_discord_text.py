"""The Discord adapter's pure parts: Markdown for Discord, mentions, thread names, budgets, throttle."""

from __future__ import annotations

import asyncio
import time

import pytest

from adapters.discord.markdown import MAX_TABLE_WIDTH, RULE, to_discord
from adapters.discord.pacing import DiscordBudgets, RestThrottle
from adapters.discord.text import readable, strip_self, thread_name
from bot.render.split import split_markdown

# -- markdown -------------------------------------------------------------------------------------


def test_plain_markdown_discord_shows_is_left_alone() -> None:
    text = "# Title\n\n**bold** _it_ `code`\n\n- a\n- b\n\n> quote\n\n### Small\n[link](https://x.y)"
    assert to_discord(text) == text


def test_deep_headings_become_bold_lines() -> None:
    assert to_discord("#### Four\n##### Five ##\n###### ") == "**Four**\n**Five**\n"


def test_setext_headings_and_rules() -> None:
    assert to_discord("Title\n=====\ntext") == "**Title**\n\ntext"
    assert to_discord("para\n\n---\n\nnext") == f"para\n\n{RULE}\n\nnext"
    assert to_discord("- item\n---") == f"- item\n{RULE}"
    assert to_discord("* * *") == RULE


def test_narrow_table_becomes_an_aligned_code_block() -> None:
    md = "Prices:\n\n| Fruit | Qty |\n|:---|---:|\n| **Apple** | 3 |\n| Pear | 12 |\n\nDone."
    assert to_discord(md) == (
        "Prices:\n\n```\nFruit | Qty\n------+----\nApple |   3\nPear  |  12\n```\n\nDone."
    )


def test_wide_table_becomes_a_bullet_list_keeping_inline_markdown() -> None:
    header = "| Name | " + " | ".join(f"Long column heading {i}" for i in range(3)) + " |"
    md = "\n".join([header, "|---|---|---|---|", "| **Ada** | `x` | y | |", "| Bob | 1 | 2 | 3 |"])
    out = to_discord(md)
    assert out.splitlines() == [
        "- **Ada** — Long column heading 0: `x` · Long column heading 1: y",
        "- **Bob** — Long column heading 0: 1 · Long column heading 1: 2 · Long column heading 2: 3",
    ]
    assert len(header) > MAX_TABLE_WIDTH


def test_table_cells_with_escaped_pipes_and_code_spans() -> None:
    out = to_discord("| a | b |\n|---|---|\n| `x|y` | p\\|q |")
    assert out == "```\na   | b\n----+----\nx|y | p|q\n```"


def test_pipes_without_a_delimiter_row_are_not_a_table() -> None:
    text = "a | b\nc | d"
    assert to_discord(text) == text


def test_code_fences_are_never_rewritten() -> None:
    md = "```md\n#### keep\n| a | b |\n|---|---|\n---\n```\n#### after"
    assert to_discord(md) == "```md\n#### keep\n| a | b |\n|---|---|\n---\n```\n**after**"
    # an unclosed fence (a reply still streaming) protects everything after it
    assert to_discord("~~~\n#### x\n") == "~~~\n#### x\n"


def test_images_become_links() -> None:
    assert to_discord('See ![a cat](https://x.y/c.png "t") and ![](https://x.y/d.png)') == (
        "See [a cat](https://x.y/c.png) and [image](https://x.y/d.png)"
    )


def test_rendered_parts_of_a_long_reply_fit_discord() -> None:
    table = "| k | v |\n|---|---|\n" + "".join(f"| key{i} | value {i} |\n" for i in range(200))
    parts = split_markdown("intro\n\n" + table + "\n#### end", 2000, to_discord)
    assert len(parts) > 1
    assert all(len(to_discord(p.markdown)) <= 2000 for p in parts)


# -- inbound text ---------------------------------------------------------------------------------


def test_own_mentions_are_stripped_in_both_forms_and_the_managed_role() -> None:
    assert strip_self("<@42> hi <@!42> there <@&7>", 42, 7).split() == ["hi", "there"]
    assert strip_self("<@43> hi", 42).split() == ["<@43>", "hi"]


def test_other_mentions_become_names() -> None:
    text = readable(
        "ask <@1> and <@!2> in <#3> with <@&4>, not <@9>", {1: "Ada", 2: "Bob"}, {4: "mods"}, {3: "dev"}
    )
    assert text == "ask @Ada and @Bob in #dev with @mods, not <@9>"


@pytest.mark.parametrize(
    ("prompt", "name"),
    [
        ("what is **up**?", "what is up ?"),
        ("   ", "Parley"),
        ("<@42> `x`", "x"),
        ("word " * 40, "word word word word word word word word word word word…"),
    ],
)
def test_thread_names(prompt: str, name: str) -> None:
    assert thread_name(prompt) == name
    assert len(thread_name(prompt)) <= 100


# -- budgets and the throttle -------------------------------------------------------------------


def test_budgets_are_per_channel_and_within_discords_limits() -> None:
    budgets = DiscordBudgets()
    posts = {b.key: b for b in budgets.post_budgets(5)}
    edits = {b.key: b for b in budgets.edit_budgets(5)}
    # Discord's own 5 per 5 s: the renderer follows the counts Discord announces for these keys.
    create, edit = posts[budgets.create_key(5)], edits[budgets.edit_key(5)]
    assert (create.key, create.capacity, create.window) == ("discord:channel:5:create", 5, 5.0)
    assert (edit.key, edit.capacity, edit.window) == ("discord:channel:5:edit", 5, 5.0)
    assert posts["discord:channel:5:create:serial"].capacity == 1
    assert edits["discord:channel:5:edit:serial"].capacity == 1
    assert posts["discord:global"] == edits["discord:global"]
    assert budgets.global_[0] + budgets.other[0] <= 50


async def test_throttle_spreads_calls_over_the_window() -> None:
    throttle = RestThrottle(3, 0.2, margin=0.0)
    starts: list[float] = []

    async def call() -> None:
        async with throttle.slot():
            starts.append(time.monotonic())
            await asyncio.sleep(0.01)

    t0 = time.monotonic()
    await asyncio.gather(*(call() for _ in range(7)))
    offsets = sorted(s - t0 for s in starts)
    # 3 at once, 3 once the first window ends (0.01 + 0.2), 1 after the second
    assert offsets[2] < 0.05 and offsets[3] >= 0.2 and offsets[6] >= 0.4
    for i in range(3, 7):  # never more than 3 in any 0.2 s
        assert offsets[i] - offsets[i - 3] >= 0.2


async def test_throttle_try_acquire_never_waits() -> None:
    throttle = RestThrottle(1, 10.0)
    assert throttle.try_acquire()
    assert not throttle.try_acquire()
    throttle.release()
    assert not throttle.try_acquire()  # the used slot still counts for the window
