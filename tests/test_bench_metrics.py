"""The bench's reader-side figures, on hand-made timelines (no platform needed)."""

from __future__ import annotations

import pytest

from bench.ideal import growth
from bench.metrics import mean_age


def test_mean_age_is_the_time_average_of_the_oldest_unseen_characters_age() -> None:
    # 10 characters at t=0, 10 more at t=1; the first ten are shown at 0.5, all at 2.
    g = growth([(0.0, 10), (1.0, 20)])
    # [0, 0.5): age t (born at 0) → 0.125; [0.5, 1): nothing unseen; [1, 2): age t - 1 → 0.5.
    assert mean_age(g, [(0.5, 10), (2.0, 20)]) == pytest.approx(0.625 / 2.0)


def test_mean_age_is_zero_when_every_token_shows_at_once() -> None:
    g = growth([(0.0, 5), (0.2, 9), (0.4, 12)])
    assert mean_age(g, [(0.0, 5), (0.2, 9), (0.4, 12)]) == 0.0


def test_mean_age_counts_the_wait_for_the_final_text() -> None:
    # Everything produced at 0 and shown only at 1: the reader is 0.5 s behind on average.
    g = growth([(0.0, 10)])
    assert mean_age(g, [(1.0, 10)]) == pytest.approx(0.5)


def test_a_shorter_visible_text_makes_the_oldest_unseen_character_older() -> None:
    # Four characters at 0 and four at 1; shown: 4 at 0.5, only 2 at 1.5 (a message rewritten),
    # all 8 at 2.
    g = growth([(0.0, 4), (1.0, 8)])
    age = mean_age(g, [(0.5, 4), (1.5, 2), (2.0, 8)])
    # [0, .5): t → .125; [.5, 1): 0; [1, 1.5): born at 1 → .125; [1.5, 2): char 2, born at 0 → .875.
    assert age == pytest.approx(1.125 / 2.0)


def test_pacesim_runs_the_real_windows_and_never_exceeds_a_budget() -> None:
    from bench.pacesim import FixedBucket, run
    from bot.render.surface import Budget

    one = run(Budget("s", 45, 60.0), 1, 7.0)
    assert one.edits >= 20 and one.staleness_s < 0.2  # an idle minute spent on a short answer
    bucket = FixedBucket(5, 5.0)
    discord = run(Budget("d", 5, 5.0), 1, 20.0, warm=0, bucket=bucket)
    assert bucket.refused == 0 and discord.edits >= 19  # the announced bucket's whole rate
