"""The short, honest notes appended to a reply that did not end normally."""

from __future__ import annotations

from bot.types import Outcome

_NOTES = {
    Outcome.LENGTH: "_(The answer hit the model's length limit and stops here.)_",
    Outcome.FILTERED: "_(The model's content filter stopped this answer.)_",
    Outcome.TRUNCATED: "_(The answer was cut off: the model's stream ended early.)_",
    Outcome.STOPPED: "_(Stopped.)_",
    Outcome.INTERRUPTED: "_(Interrupted — mention me again to retry.)_",
}


def with_note(text: str, outcome: Outcome, error_message: str | None = None) -> str:
    """The reply as users see it: the answer, then a note when it did not end normally."""
    if outcome is Outcome.ERROR:
        message = error_message or "Something went wrong while answering."
        note = f"⚠️ {message}" if not text.strip() else f"_(The answer broke off: {message})_"
    else:
        note = _NOTES.get(outcome, "")
    if not note:
        return text
    return f"{text.rstrip()}\n\n{note}" if text.strip() else note
