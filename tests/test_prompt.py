import datetime as dt

from bot.prompt import EARLIER_OWN_MESSAGE, HistoryEntry, build_turns, system_prompt
from bot.providers.base import DocumentPart, TextPart
from bot.types import Outcome


def texts(turns):
    return [(t.role, " | ".join(p.text for p in t.parts if isinstance(p, TextPart))) for t in turns]


def test_system_prompt_carries_the_date_and_platform():
    text = system_prompt("Be brief.", platform="slack", today=dt.date(2026, 11, 22))
    assert text.startswith("Be brief.")
    assert "2026-11-22" in text and "Slack" in text


def test_single_author_is_not_attributed_and_turns_alternate():
    history = [
        HistoryEntry("user", "ann", "hi"),
        HistoryEntry("assistant", "Parley", "hello"),
    ]
    turns = build_turns(history, HistoryEntry("user", "ann", "how are you"), budget_chars=10_000)
    assert texts(turns) == [("user", "hi"), ("assistant", "hello"), ("user", "how are you")]


def test_several_authors_are_attributed():
    history = [HistoryEntry("user", "ann", "hi"), HistoryEntry("assistant", "Parley", "hello")]
    turns = build_turns(history, HistoryEntry("user", "bob", "me too"), budget_chars=10_000)
    assert texts(turns) == [("user", "[ann] hi"), ("assistant", "hello"), ("user", "[bob] me too")]


def test_failed_replies_are_dropped_and_adjacent_user_turns_merged():
    history = [
        HistoryEntry("user", "ann", "first"),
        HistoryEntry("assistant", "Parley", "⚠️ gateway down", Outcome.ERROR),
    ]
    turns = build_turns(history, HistoryEntry("user", "ann", "again"), budget_chars=10_000)
    assert texts(turns) == [("user", "first\n\nagain")]


def test_budget_keeps_whole_exchanges_and_always_the_newest_turn():
    history = []
    for i in range(10):
        history += [HistoryEntry("user", "ann", f"q{i}" * 10), HistoryEntry("assistant", "P", f"a{i}" * 10)]
    current = HistoryEntry("user", "ann", "x" * 500)
    turns = build_turns(history, current, budget_chars=600)
    assert turns[-1].parts[-1] == TextPart("x" * 500)
    assert turns[0].role == "user"
    # 500 + two exchanges of 40 chars each fit in 600; a third does not.
    assert len(turns) == 5
    assert texts(turns)[0] == ("user", "q8" * 10)
    tiny = build_turns(history, current, budget_chars=10)
    assert len(tiny) == 1


def test_a_history_that_opens_with_the_assistant_keeps_its_message():
    # A reply to Parley's own message: the context read back starts with Parley's words.
    history = [HistoryEntry("assistant", "Parley", "The deploy moves to Friday.")]
    turns = build_turns(history, HistoryEntry("user", "ann", "why Friday?"), budget_chars=1000)
    assert [t.role for t in turns] == ["user"]  # both formats must open with a user turn
    assert texts(turns) == [("user", EARLIER_OWN_MESSAGE + "The deploy moves to Friday.\n\nwhy Friday?")]


def test_files_come_before_the_question():
    doc = DocumentPart(b"%PDF-1.4", "a.pdf")
    turns = build_turns([], HistoryEntry("user", "ann", "summarize"), budget_chars=100, current_parts=[doc])
    assert turns[0].parts == (doc, TextPart("summarize"))
