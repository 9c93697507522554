"""The streaming renderer: paces every reply's posts and edits within the platforms' budgets.

The core creates one :class:`Pacer` per process and one :class:`ReplyStream` per reply::

    stream = pacer.reply(surface)
    await stream.start()          # placeholder up
    stream.update(markdown)       # per token: latest full snapshot
    await stream.finish(markdown) # every message shows the final text, live=False

Read it in this order: ``surface.py`` (what adapters implement, the placeholders), ``split.py``
(cutting long text into messages), ``plan.py`` (pure: a reply's snapshot and what it shows → the
next action), ``reply.py`` (the reply the core talks to), ``budget.py`` (shared sliding-window
budgets), ``pacer.py`` (the loop that hands out slots and settles what the platform answered).
"""

from bot.render.budget import BudgetBook, Window
from bot.render.pacer import ActionCounts, Pacer, PacerStats
from bot.render.reply import ReplyStream
from bot.render.split import Fence, Part, cut_tail, fence_after, split_markdown, whole_part
from bot.render.surface import (
    Announced,
    Announces,
    Budget,
    RateLimited,
    ReplySurface,
    SurfaceError,
    SurfaceLimits,
)

__all__ = [
    "ActionCounts",
    "Announced",
    "Announces",
    "Budget",
    "BudgetBook",
    "Fence",
    "Pacer",
    "PacerStats",
    "Part",
    "RateLimited",
    "ReplyStream",
    "ReplySurface",
    "SurfaceError",
    "SurfaceLimits",
    "Window",
    "cut_tail",
    "fence_after",
    "split_markdown",
    "whole_part",
]
