"""plan.py: from a reply's snapshot and what its messages show, the next action — plain values only."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.render.plan import (
    AGING_CHARS_PER_SECOND,
    Action,
    Display,
    Kind,
    Message,
    Snapshot,
    cut,
    next_action,
    priority,
    urgent,
)
from bot.render.split import split_markdown

PLACEHOLDER = "…"


def identity(markdown: str) -> str:
    return markdown


def snap(
    markdown: str, *, final: bool = False, max_chars: int = 100, previous: Snapshot | None = None
) -> Snapshot:
    return cut(
        previous or Snapshot.blank(PLACEHOLDER), markdown, final=final, max_chars=max_chars, render=identity
    )


def settle(snapshot: Snapshot, display: Display, *, limit: int = 100) -> tuple[Display, list[Action]]:
    """Apply planned actions, as a platform that accepts everything would, until none is left."""
    actions: list[Action] = []
    refs = iter(range(1, 10_000))
    while True:
        step = next_action(snapshot, display)
        display = Display(display.messages, display.visible_md, step.clean)  # as the reply keeps it
        if step.action is None:
            return display, actions
        actions.append(step.action)
        assert len(actions) <= limit, "the plan never converges"
        display = display.sent(step.action, f"m{next(refs)}")


def prose(n: int) -> str:
    words = "alpha beta gamma delta epsilon zeta eta theta".split()
    out = " ".join(words[i % len(words)] for i in range(n))
    return out


# -- one message -----------------------------------------------------------------------------------


def test_an_empty_reply_posts_the_placeholder_first() -> None:
    step = next_action(Snapshot.blank(PLACEHOLDER), Display())
    assert step.action == Action(Kind.POST, 0, PLACEHOLDER, True, 0, True)
    assert not step.action.freezes


def test_first_text_edits_the_placeholder_urgently() -> None:
    shown = Display((Message("m1", PLACEHOLDER, True),))
    step = next_action(snap("Hello"), shown)
    assert step.action == Action(Kind.EDIT, 0, "Hello", True, 5, True, "m1")


def test_intermediate_text_is_not_urgent_and_final_text_is() -> None:
    shown = Display((Message("m1", "Hello", True),), visible_md=5)
    later = next_action(snap("Hello there"), shown).action
    assert later is not None and later.kind is Kind.EDIT and not later.urgent and later.live
    final = next_action(snap("Hello there", final=True), shown).action
    assert final is not None and final.urgent and final.freezes and final.text == "Hello there"


def test_nothing_to_do_when_the_message_shows_the_snapshot() -> None:
    shown = Display((Message("m1", "Hello", True),), visible_md=5)
    assert next_action(snap("Hello"), shown).action is None
    assert next_action(snap("Hello", final=True), Display((Message("m1", "Hello", False),), 5)).action is None


def test_nothing_is_planned_while_an_action_is_in_flight() -> None:
    shown = Display((Message("m1", PLACEHOLDER, True),), in_flight=True)
    assert next_action(snap("Hello"), shown).action is None


def test_blank_text_keeps_the_placeholder_and_finishes_as_it() -> None:
    shown = Display((Message("m1", PLACEHOLDER, True),))
    assert next_action(snap("  \n"), shown).action is None
    final = next_action(snap("", final=True), shown).action
    assert final == Action(Kind.EDIT, 0, PLACEHOLDER, False, 0, True, "m1")


# -- several messages --------------------------------------------------------------------------------


def test_a_long_reply_freezes_its_first_part_then_posts_the_rest() -> None:
    text = "\n\n".join(prose(12) for _ in range(4))  # ~90 chars a paragraph, limit 100
    s = snap(text)
    assert len(s.frozen) >= 2 and s.slots == len(s.frozen) + 1
    shown = Display((Message("m1", PLACEHOLDER, True),))
    first = next_action(s, shown).action
    assert first == Action(Kind.EDIT, 0, s.frozen[0].text, False, s.frozen[0].md_end, True, "m1")
    assert first.freezes
    display, actions = settle(s, shown)
    assert [a.kind for a in actions] == [Kind.EDIT] + [Kind.POST] * (s.slots - 1)
    assert [m.text for m in display.messages] == [p.text for p in s.frozen] + [s.tail_text]
    assert [m.live for m in display.messages] == [False] * len(s.frozen) + [True]
    assert display.visible_md == len(text)


def test_frozen_messages_already_shown_are_skipped_for_good() -> None:
    s = snap("\n\n".join(prose(12) for _ in range(4)))
    display, _ = settle(s, Display())
    step = next_action(s, display)
    assert step.action is None and step.clean == len(s.frozen)
    # From then on, those messages are not looked at: even a wrong text there goes unnoticed.
    messages = (Message("m1", "tampered", False), *display.messages[1:])
    assert next_action(s, Display(messages, display.visible_md, step.clean)).action is None
    assert next_action(s, Display(messages, display.visible_md, 0)).action is not None


def test_a_blank_tail_after_frozen_parts_gets_no_message() -> None:
    text = prose(12) + "\n\n" + prose(12) + "\n\n" + " " * 40
    s = snap(text, final=True)
    assert s.tail_blank and len(s.frozen) == 2
    display, _ = settle(s, Display())
    assert len(display.messages) == len(s.frozen) == s.slots
    assert all(not m.live for m in display.messages)


def test_a_dead_message_is_posted_again_in_its_place() -> None:
    s = snap("Some text")
    shown = Display((Message("m1", "Some", True),), visible_md=4).abandoned(0)
    action = next_action(s, shown).action
    assert action == Action(Kind.POST, 0, "Some text", True, 9, True)
    after = shown.sent(action, "m2")
    assert after.messages == (Message("m2", "Some text", True),)


def test_messages_left_over_after_the_text_shrank_show_the_placeholder_no_longer_live() -> None:
    long = snap("\n\n".join(prose(12) for _ in range(4)))
    display, _ = settle(long, Display())
    n = len(display.messages)
    short = snap("Sorry, starting over.", final=True, previous=long)
    assert short.frozen == ()
    display, actions = settle(short, display.resplit())
    assert [m.text for m in display.messages] == ["Sorry, starting over."] + [PLACEHOLDER] * (n - 1)
    assert all(not m.live for m in display.messages)
    assert all(a.kind is Kind.EDIT for a in actions)


# -- cutting ------------------------------------------------------------------------------------------


def test_cut_keeps_frozen_pieces_and_renders_only_what_is_new() -> None:
    rendered: list[str] = []

    def render(md: str) -> str:
        rendered.append(md)
        return md.upper()

    base = "\n\n".join(prose(12) for _ in range(3))
    first = cut(Snapshot.blank(PLACEHOLDER), base, final=False, max_chars=100, render=render)
    rendered.clear()
    second = cut(first, base + " more", final=False, max_chars=100, render=render)
    assert second.frozen[: len(first.frozen)] == first.frozen
    assert second.extended_by(base + " more")
    # Only the tail is rendered (to see whether it fits, then to show it): frozen pieces never again.
    assert set(rendered) == {second.tail.markdown} and second.tail_text == second.tail.markdown.upper()


def test_cut_starts_again_when_the_text_is_rewritten_before_its_frozen_pieces() -> None:
    first = snap("\n\n".join(prose(12) for _ in range(3)))
    assert first.frozen and not first.extended_by("Different")
    again = snap("Different", previous=first)
    assert again.frozen == () and again.tail_text == "Different"


def test_an_open_code_fence_is_closed_for_display() -> None:
    s = snap("Look:\n```py\nx = 1\n")
    assert s.tail_text == "Look:\n```py\nx = 1\n```"
    assert s.fence is None  # the tail starts outside any fence


# -- who goes first -------------------------------------------------------------------------------------


def test_urgent_means_first_or_final_text() -> None:
    assert urgent(False, 0) and urgent(True, 50) and not urgent(False, 50)


def test_priority_tiers_then_unseen_text_then_age() -> None:
    nothing_shown = priority(md_len=5, visible_md=0, final=False, waited=0)
    finishing = priority(md_len=5000, visible_md=10, final=True, waited=9)
    behind = priority(md_len=900, visible_md=100, final=False, waited=0)
    slightly = priority(md_len=150, visible_md=100, final=False, waited=0)
    assert nothing_shown > finishing > behind > slightly
    waited = priority(md_len=150, visible_md=100, final=False, waited=4)
    assert waited[1] - slightly[1] == 4 * AGING_CHARS_PER_SECOND


# -- properties ------------------------------------------------------------------------------------------

paragraphs = st.lists(
    st.text(alphabet=st.sampled_from("ab `*\n"), min_size=0, max_size=60), min_size=1, max_size=8
).map("\n\n".join)


@settings(max_examples=150, deadline=None)
@given(text=paragraphs, cuts=st.lists(st.integers(0, 400), max_size=6), max_chars=st.integers(20, 120))
def test_streaming_any_text_converges_to_the_split_of_the_final(
    text: str, cuts: list[int], max_chars: int
) -> None:
    """Whatever snapshots came before, a platform that accepts every action ends up showing exactly
    the final text split as split_markdown splits it, every message no longer live."""
    previous = Snapshot.blank(PLACEHOLDER)
    display = Display()
    for end in sorted(cuts):
        previous = cut(previous, text[:end], final=False, max_chars=max_chars, render=identity)
        display, actions = settle(previous, display)
        assert all(len(a.text) <= max_chars for a in actions)
        assert display.messages[0].text == previous.desired(0, display.visible_md)[0]
    if not previous.extended_by(text):
        display = display.resplit()
    final = cut(previous, text, final=True, max_chars=max_chars, render=identity)
    display, actions = settle(final, display)
    assert all(len(a.text) <= max_chars for a in actions)
    parts = split_markdown(text, max_chars)
    assert [p.body for p in final.parts] == [p.body for p in parts]
    shown = [m.text for m in display.messages[: final.slots]]
    expected = [p.markdown for p in parts] if text.strip() else [PLACEHOLDER]
    assert shown == expected
    assert not any(m.live for m in display.messages)
    assert next_action(final, display).action is None


@settings(max_examples=100, deadline=None)
@given(text=paragraphs, max_chars=st.integers(20, 120))
def test_the_first_action_of_a_new_reply_is_an_urgent_post_of_message_zero(text: str, max_chars: int) -> None:
    action = next_action(snap(text, max_chars=max_chars), Display()).action
    assert action is not None and action.kind is Kind.POST and action.index == 0 and action.urgent
