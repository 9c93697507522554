"""The fixed workload: one answer, streamed at one rate, so runs are comparable."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from tests.fakes.gateway import RecordedRequest, Reply

_WORDS = (
    "the model reads your question and answers it in plain words while the platform shows each "
    "new part of the reply as soon as its rate limit allows so the people in the channel see the "
    "text grow instead of waiting for the end budget window edit message thread workspace token "
    "stream latency visible final first placeholder schedule fair share channel user answer "
    "question context history summary example result detail reason because however therefore "
    "which should would could often rarely always never before after during between across"
).split()

# The question that warms a stack up before measuring; it gets a one-sentence answer.
WARMUP = 9999
# A question carries this marker so a gateway request can be matched to the reply it feeds.
_TAG = re.compile(r"\bq(\d{4})x\b")


@dataclass(frozen=True, slots=True)
class Workload:
    tokens: int = 400
    rate: float = 60.0  # tokens per second
    first_delay: float = 0.5  # the model's time to first token

    @property
    def answer(self) -> str:
        return make_answer(self.tokens)

    def reply(self) -> Callable[[RecordedRequest], Reply]:
        """The fake gateway's default: every request gets the same answer at the same pace."""
        text = self.answer

        def answer(request: RecordedRequest) -> Reply:
            if question_index(request.last_user_text) == WARMUP:
                return Reply(text="Ready.")
            return Reply.paced(text, self.rate, first_delay=self.first_delay)

        return answer


def make_answer(tokens: int, seed: int = 7) -> str:
    """Prose of ``tokens`` words (the fake gateway sends one word and its trailing space or
    newline per delta), in sentences and paragraphs, with no Markdown a platform would rewrite."""
    rng = random.Random(seed)
    out: list[str] = []
    sentence = 0
    for i in range(tokens):
        word = rng.choice(_WORDS)
        if sentence == 0:
            word = word.capitalize()
        sentence += 1
        last = i == tokens - 1
        if last or (sentence >= 8 and rng.random() < 0.2):
            sentence = 0
            sep = "." if last else ".\n\n" if rng.random() < 0.25 else ". "
        else:
            sep = " "
        out.append(word + sep)
    return "".join(out)


def question(i: int) -> str:
    return f"q{i:04d}x please explain the rate limits"


def question_index(text: str) -> int | None:
    m = _TAG.search(text)
    return int(m.group(1)) if m else None
