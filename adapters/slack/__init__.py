"""Parley in Slack: mentions and DMs answered in threads, streamed within Slack's rate limits.

The core finds this adapter through the ``parley.adapters`` entry point ``slack`` and hands it
one :class:`~bot.context.AdapterContext`; when to answer (:mod:`bot.routing`) and what the
commands do (:mod:`bot.controls`) are decided there. Modules:

- ``app``: the Bolt app, Socket Mode or HTTP mode, start/stop;
- ``events``: message events parsed for the routing decision, then → the core (exactly once);
- ``thread``: reading a thread back as context; ``text``: Slack markup → plain text;
- ``surface``: writing a reply (native streaming, budgets, the status); ``markup``: its blocks
  (Markdown, the Stop button, the feedback buttons);
- ``agent``: Slack's Agent messaging experience (the Messages tab's prompts, thread titles,
  "this channel"); ``feedback``: 👍 / 👎 clicks and "what was wrong?";
- ``commands``: ``/parley``, the Stop button, message shortcuts (Slack's UI for the controls);
- ``files``: Slack files as lazy, size-capped downloads; ``directory``: cached ``users.info``;
- ``manifest``: the app manifest (``python -m adapters.slack.manifest`` prints it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.slack.app import SlackAdapter
    from bot.context import AdapterContext


def create(ctx: AdapterContext) -> SlackAdapter | None:
    """The Slack adapter, or None when ``SLACK_BOT_TOKEN`` is not set."""
    if not ctx.settings.slack_enabled():
        return None
    from adapters.slack.app import SlackAdapter

    return SlackAdapter(ctx)
