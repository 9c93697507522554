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


# Whole replies that are not answers: short, polite, and stored like any reply.
BUSY = {
    "user_rate": "⏳ You've asked me a lot in the last minute. Please wait a moment, then ask again.",
    "user_busy": "⏳ I'm still working on your other questions. Ask again once one of them is answered.",
    "channel_busy": "⏳ I'm answering many questions in this channel right now. Please ask again soon.",
    "global_busy": "⏳ I'm very busy right now. Please ask again in a moment.",
}
MENTION_ONLY = "👋 Hi! What can I do for you? Mention me again with your question (or attach a file)."
DATABASE_DOWN = (
    "⚠️ Parley can't reach its database right now, so it can't answer. Please try again in a few minutes."
)
FAILED = "Something went wrong while answering."
TOO_SLOW = "The answer took too long and was cut off."
INTERRUPTED = _NOTES[Outcome.INTERRUPTED]


def trimmed(length: int, kept: int) -> str:
    """Shown before the answer when a question was too long to read whole."""
    return f"_(Your message was {length:,} characters long; I read the first {kept:,}.)_"


TOO_SLOW_NOTE = f"_({TOO_SLOW})_"
# The model called tools on the last step of a turn, where it may call none (PARLEY_TOOL_STEPS).
TOOL_STEPS_USED = "_(I ran out of tool steps for this question before I could finish. Ask me to carry on.)_"
# Pictures a tool made (bot/pictures.py).
PICTURE_NOT_SHOWN = "_(A picture was made for this answer, but it can't be shown here.)_"
PICTURES_NOT_SHOWN = "_(Pictures were made for this answer, but they can't be shown here.)_"


def picture_saved(name: str) -> str:
    """The console: where the picture is (its working directory)."""
    return f"_(Picture saved as `{name}`.)_"


def picture_failed(name: str) -> str:
    return f"_(The picture `{name}` was made but could not be attached.)_"
