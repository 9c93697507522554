"""split.py: where a long reply is cut, and that every part fits and keeps its code fences whole."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.render.split import (
    Fence,
    Part,
    cut_tail,
    fence_after,
    split_markdown,
    whole_part,
)


def escape_render(markdown: str) -> str:
    """A render() that grows the text, like escaping for a platform's own syntax."""
    return markdown.replace("*", "\\*").replace("_", "\\_")


def bodies(parts: list[Part]) -> str:
    return "".join(p.body for p in parts)


def assert_valid(parts: list[Part], original: str, max_chars: int, render=lambda s: s) -> None:
    assert parts
    for p in parts:
        assert p.body or parts == [Part("")], "every part consumes text"
        assert len(render(p.markdown)) <= max_chars
        assert fence_after(p.markdown) is None, f"unbalanced fence in {p.markdown!r}"
    joined = bodies(parts)
    assert original.startswith(joined)
    assert original[len(joined) :].strip() == "", "only trailing whitespace may be dropped"


# -- fence scanning ---------------------------------------------------------------------------


def test_fence_after_tracks_open_and_close() -> None:
    assert fence_after("text\n```python\ncode\n") == Fence("```", "```python")
    assert fence_after("```python\ncode\n```\nmore") is None
    # a shorter run, or one with an info string, does not close a longer fence
    assert fence_after("````\n```\n``` x\n") == Fence("````", "````")
    assert fence_after("~~~\n```\n") == Fence("~~~", "~~~")
    # backticks in the info string: not a fence at all
    assert fence_after("```a`b\n") is None
    # fences inside list items (indented) count
    assert fence_after("1. step\n    ```sh\n    ls\n") == Fence("```", "    ```sh")


def test_whole_part_closes_an_open_fence_for_display() -> None:
    part, after = whole_part("intro\n```js\nlet x", None, 2000)
    assert part.markdown == "intro\n```js\nlet x\n```"
    assert after == Fence("```", "```js")
    part, after = whole_part("more code\n```\nafter", Fence("```", "```js"), 2000)
    assert part.markdown == "```js\nmore code\n```\nafter"
    assert after is None


def test_short_text_is_one_untouched_part() -> None:
    assert cut_tail("hello world", None, 100) is None
    assert split_markdown("hello world", 100) == [Part("hello world")]
    assert split_markdown("", 100) == [Part("")]


def test_max_chars_too_small_is_refused() -> None:
    with pytest.raises(ValueError):
        cut_tail("x" * 50, None, 10)


# -- boundaries ------------------------------------------------------------------------------


def test_paragraph_boundary_preferred_over_later_line_break() -> None:
    text = "a" * 60 + "\n\n" + "b" * 20 + "\n" + "c" * 10 + "\n" + "d" * 40
    parts = split_markdown(text, 100)
    assert parts[0].body == "a" * 60 + "\n\n"
    assert_valid(parts, text, 100)


def test_line_boundary_when_no_paragraph() -> None:
    text = "a" * 60 + "\n" + "b" * 30 + "\n" + "c" * 40
    parts = split_markdown(text, 100)
    assert parts[0].body == "a" * 60 + "\n" + "b" * 30 + "\n"


def test_sentence_then_space_then_hard_cut() -> None:
    text = (
        "Aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa. Bbbb bbbb bbbb bbbb bbbb bbbb bbbb bbbb"
    )
    parts = split_markdown(text, 80)
    assert parts[0].body.endswith("aaaa. ")
    text = "word " * 40
    parts = split_markdown(text, 52)
    assert all(p.body.endswith(" ") for p in parts)
    assert_valid(parts, text, 52)
    text = "x" * 250
    parts = split_markdown(text, 100)
    assert [len(p.body) for p in parts] == [100, 100, 50]


def test_boundary_in_upper_half_only() -> None:
    # A paragraph break at 10% would make a nearly empty message: a line break near the limit wins.
    text = "a" * 10 + "\n\n" + "b" * 70 + "\n" + "c" * 60
    parts = split_markdown(text, 100)
    assert parts[0].body == "a" * 10 + "\n\n" + "b" * 70 + "\n"


# -- code fences -----------------------------------------------------------------------------


def test_code_block_is_closed_and_reopened_with_its_info_string() -> None:
    code = "".join(f"print({i})\n" for i in range(30))
    text = "Here:\n\n```python\n" + code + "```\n\nDone."
    parts = split_markdown(text, 120)
    assert len(parts) > 2
    assert parts[0].close == "```"
    for prev, nxt in itertools.pairwise(parts):
        if prev.close:
            assert nxt.reopen == "```python\n"
    # the middle parts are entirely code, rendered as code
    for p in parts[1:-1]:
        assert p.markdown.startswith("```python\n") and p.markdown.endswith("\n```")
    assert_valid(parts, text, 120)


def test_no_empty_code_block_at_a_cut() -> None:
    # The fence opens right at the place a line cut would go: cut before it instead.
    text = "a" * 88 + "\n```py\n" + "x = 1\n" * 20 + "```\n"
    parts = split_markdown(text, 100)
    assert parts[0].body == "a" * 88 + "\n"
    assert parts[1].body.startswith("```py\nx = 1\n")
    assert_valid(parts, text, 100)


def test_never_cuts_inside_a_fence_line() -> None:
    # The only space near the limit sits inside the opening fence's info string.
    text = "a" * 85 + "\n```py title=x.py\n" + "y\n" * 5 + "```"
    parts = split_markdown(text, 100)
    for p in parts:
        for line in p.markdown.split("\n"):
            if "`" in line:
                assert line in ("```py title=x.py", "```"), line


def test_mid_line_cut_does_not_create_a_fence() -> None:
    text = "x" * 99 + "```not-a-fence and more words here"
    parts = split_markdown(text, 100)
    assert_valid(parts, text, 100)
    assert not parts[1].body.startswith("```")


def test_tilde_and_long_fences_are_closed_with_their_own_marker() -> None:
    text = "~~~~text\n" + "line\n" * 40 + "~~~~\n"
    parts = split_markdown(text, 60)
    assert parts[0].close.endswith("~~~~")
    assert parts[1].reopen == "~~~~text\n"
    assert_valid(parts, text, 60)


def test_indented_fence_in_list_item_keeps_indentation() -> None:
    text = "1. Run:\n    ```sh\n" + "    echo hi\n" * 20 + "    ```\n2. Done\n"
    parts = split_markdown(text, 100)
    assert parts[0].close == "    ```"
    assert parts[1].reopen == "    ```sh\n"
    assert_valid(parts, text, 100)


def test_overlong_info_string_reopens_with_bare_marker() -> None:
    text = "```" + "x" * 40 + "\n" + "code line\n" * 20 + "```"
    parts = split_markdown(text, 100)
    assert parts[1].reopen == "```\n"
    assert_valid(parts, text, 100)


def test_unterminated_fence_at_the_end_is_closed() -> None:
    text = "```python\n" + "x = 1\n" * 40
    parts = split_markdown(text, 100)
    assert all(p.markdown.rstrip().endswith("```") for p in parts)
    assert_valid(parts, text, 100)


def test_5000_char_reply_with_code_in_2000_char_parts() -> None:
    prose = "".join(f"Paragraph {i}: " + "lorem ipsum dolor sit amet. " * 5 + "\n\n" for i in range(8))
    code = "```python\n" + "".join(f"def f{i}(x):\n    return x * {i}\n\n" for i in range(90)) + "```\n\n"
    text = prose + code + prose
    assert 5000 <= len(text) <= 7000
    parts = split_markdown(text, 2000)
    assert len(parts) in (3, 4)
    assert_valid(parts, text, 2000)
    reopened = [p for p in parts if p.reopen]
    assert reopened and all(p.reopen == "```python\n" for p in reopened)
    # parts are reasonably full: a clean boundary in the upper half was found each time
    assert all(len(p.markdown) > 1000 for p in parts[:-1])


def test_render_expansion_is_measured() -> None:
    text = "**bold** _it_ " * 40
    parts = split_markdown(text, 100, escape_render)
    assert len(parts) > 1
    assert_valid(parts, text, 100, escape_render)
    # the Markdown alone would have allowed longer parts
    assert max(len(p.markdown) for p in parts) < 100


# -- properties ------------------------------------------------------------------------------

# Whole words drawn from a list (drawing text character by character made generation, not the
# code under test, the slow part); long runs without spaces force hard cuts.
_word = st.sampled_from(
    ["a", "to", "fox", "jumps", "over", "lazy", "dogs", "end.", "wait!", "*em*", "_u_", "x`y", "q~"]
) | st.integers(30, 90).map(lambda n: ("xyz" * 30)[:n])
_line = st.lists(_word, max_size=10).map(" ".join)
_para = st.lists(_line, min_size=1, max_size=4).map("\n".join)
_code = st.builds(
    lambda fence, lang, lines, closed: (
        f"{fence}{lang}\n" + "".join(f"{ln}\n" for ln in lines) + (fence if closed else "")
    ),
    st.sampled_from(["```", "````", "~~~"]),
    st.sampled_from(["", "python", "c++", "js title=x"]),
    st.lists(_line, max_size=15),
    st.booleans(),
)
_doc = st.lists(st.one_of(_para, _code), min_size=1, max_size=8).map("\n\n".join)


def _labels(markdown: str) -> list[str]:
    """Independent reference: label each character text / code / fence by simple toggling."""
    out: list[str] = []
    fence = ""
    for line in markdown.split("\n"):
        m = re.match(r"(`{3,}|~{3,})", line)
        if m and not fence:
            fence, label = m.group(1), "fence"
        elif (
            m
            and fence
            and m.group(1)[0] == fence[0]
            and len(m.group(1)) >= len(fence)
            and not line[len(m.group(1)) :].strip()
        ):
            fence, label = "", "fence"
        else:
            label = "code" if fence else "text"
        out.extend([label] * (len(line) + 1))
    return out[: len(markdown)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_doc, max_chars=st.integers(40, 400))
def test_property_structured_docs(doc: str, max_chars: int) -> None:
    parts = split_markdown(doc, max_chars)
    assert_valid(parts, doc, max_chars)
    # Fidelity: every character is code in its part exactly when it is code in the original
    # (text stays text, a fence line stays a fence line).
    original = _labels(doc)
    pos = 0
    for p in parts:
        labels = _labels(p.markdown)[len(p.reopen) : len(p.reopen) + len(p.body)]
        assert labels == original[pos : pos + len(p.body)], p
        pos += len(p.body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet="ab `~\n.*", max_size=600), max_chars=st.integers(20, 200))
def test_property_any_text(text: str, max_chars: int) -> None:
    assert_valid(split_markdown(text, max_chars), text, max_chars)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_doc, max_chars=st.integers(40, 300))
def test_property_expanding_render(doc: str, max_chars: int) -> None:
    assert_valid(split_markdown(doc, max_chars, escape_render), doc, max_chars, escape_render)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_doc, max_chars=st.integers(40, 300), data=st.data())
def test_property_streaming_freezes_like_a_whole_split(doc: str, max_chars: int, data: st.DataObject) -> None:
    """Freezing snapshot by snapshot (as the stream does) gives valid, append-only parts."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(doc)), max_size=8)))
    frozen: list[Part] = []
    fence: Fence | None = None
    start = 0
    for end in [*cuts, len(doc)]:
        snapshot = doc[:end]
        if end < start:
            continue
        tail = snapshot[start:]
        while (cut := cut_tail(tail, fence, max_chars)) is not None:
            part, fence = cut
            frozen.append(part)
            start += len(part.body)
            tail = tail[len(part.body) :]
        live, _ = whole_part(tail, fence, max_chars)
        assert len(live.markdown) <= max_chars
    parts = frozen + (
        [whole_part(doc[start:], fence, max_chars)[0]] if doc[start:].strip() or not frozen else []
    )
    assert_valid(parts, doc, max_chars)
