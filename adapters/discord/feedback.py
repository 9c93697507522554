"""Feedback in Discord: clicks on an answer's 👍 / 👎 buttons, and "what was wrong?" in a modal.

The buttons' ``custom_id``s name the vote and the reply (``parley:feedback:42:down``), and the
modal's names the reply (``parley:why:42``): every click and submission is understood from the
interaction alone, by any process, before or after a restart; nothing is kept in memory. The
vote is :mod:`bot.feedback`'s; the interaction's id names the click, so a delivery seen twice
counts once. Discord wants an answer within 3 seconds: a vote is acknowledged without changing
the message (the buttons stay), or answered with the modal when a 👎 was just cast.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import discord

from adapters.discord.hub import Hub
from adapters.discord.surface import FEEDBACK_ID, NO_PINGS
from bot.controls import NOT_HERE
from bot.feedback import THANKS, WHY_PLACEHOLDER, WHY_SHORT_LABEL, WHY_TITLE, Vote, reply_id

log = logging.getLogger("parley.discord")

WHY_ID = "parley:why:"  # + "{reply id}"
WHY_INPUT = "why"
MODAL_SECONDS = 900.0  # discord.py keeps a sent modal this long; the submission is handled here anyway


def parse_vote(custom_id: str) -> tuple[int, Vote] | None:
    """``parley:feedback:42:up`` → (42, up); None for anything else."""
    if not custom_id.startswith(FEEDBACK_ID):
        return None
    reply, _, value = custom_id[len(FEEDBACK_ID) :].partition(":")
    vote, number = Vote.parse(value), reply_id(reply)
    return None if vote is None or number is None else (number, vote)


def typed_text(components: Any, custom_id: str) -> str:
    """The value of the text input ``custom_id`` anywhere in a modal submission's components."""
    if isinstance(components, list):
        for item in components:
            found = typed_text(item, custom_id)
            if found:
                return found
    elif isinstance(components, Mapping):
        if components.get("custom_id") == custom_id and isinstance(components.get("value"), str):
            return str(components["value"])
        return typed_text(components.get("components") or components.get("component"), custom_id)
    return ""


class WhyModal(discord.ui.Modal):
    """ "What was wrong?" for one reply. Its submission is handled by :class:`FeedbackButtons`."""

    def __init__(self, reply_id: int) -> None:
        super().__init__(title=WHY_TITLE, timeout=MODAL_SECONDS, custom_id=f"{WHY_ID}{reply_id}")
        self.add_item(
            discord.ui.TextInput(
                label=WHY_SHORT_LABEL,
                custom_id=WHY_INPUT,
                style=discord.TextStyle.long,
                placeholder=WHY_PLACEHOLDER[:100],
                required=False,
                max_length=3000,
            )
        )


class FeedbackButtons:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def on_interaction(self, interaction: discord.Interaction, admitted: bool) -> bool:
        """Handle a feedback click or a "what was wrong?" submission; False if it is neither."""
        data: Mapping[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if interaction.type is discord.InteractionType.component:
            vote = parse_vote(custom_id)
            if vote is None:
                return False
            await self._vote(interaction, *vote, admitted=admitted)
            return True
        if interaction.type is discord.InteractionType.modal_submit and custom_id.startswith(WHY_ID):
            reply = reply_id(custom_id[len(WHY_ID) :])
            if reply is not None:
                await self._explain(interaction, reply, typed_text(data.get("components"), WHY_INPUT))
            return True
        return False

    async def _vote(
        self, interaction: discord.Interaction, reply_id: int, value: Vote, *, admitted: bool
    ) -> None:
        if not admitted:
            await interaction.response.send_message(NOT_HERE, ephemeral=True)
            return
        user = str(interaction.user.id)
        click = str(interaction.id)
        answer = await self.hub.ctx.feedback.vote("discord", reply_id, user, value, click_id=click)
        try:
            if answer.ask_why:
                await interaction.response.send_modal(WhyModal(reply_id))
            elif answer.text:
                await interaction.response.send_message(
                    answer.text, ephemeral=True, allowed_mentions=NO_PINGS
                )
            else:
                await interaction.response.defer()  # the buttons stay as they are
        except discord.HTTPException as exc:
            # Answered already (a second delivery of the click) or past Discord's 3 s: the vote
            # itself is stored either way.
            log.info("could not answer a feedback click on reply %s: %s", reply_id, exc)

    async def _explain(self, interaction: discord.Interaction, reply_id: int, text: str) -> None:
        if text.strip():
            await self.hub.ctx.feedback.explain(reply_id, str(interaction.user.id), text)
        await interaction.response.send_message(THANKS, ephemeral=True, allowed_mentions=NO_PINGS)
