"""Slash commands (``/model``, ``/reset``, ``/system``, ``/usage``) and the Stop button.

Every answer is ephemeral. Discord drops an interaction not answered within 3 s, so each
command answers directly when its work is done within :data:`ANSWER_WITHIN`, and otherwise
defers ("Parley is thinking…") and follows up. The access policy applies to every command,
autocomplete and button press, as it does to messages.

``/model`` and ``/system`` apply where they are used: in a thread to that thread, in a channel
to the channel (its threads follow unless they chose their own), in a DM to the DM. With
``PARLEY_ADMIN_ONLY_SETTINGS`` changing them in a server needs the Manage Server permission;
anyone may see them. What each command does, who may use it and what it says are
:mod:`bot.controls`'; this module is Discord's UI for them (options, autocomplete, deferral).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

import discord
from discord import app_commands

from adapters.discord.hub import Hub
from adapters.discord.surface import NO_PINGS, STOP_ID, make_ref
from bot.controls import FAILED, NOT_HERE, Place, PlaceKind, StopResult, Wording, known
from bot.types import ConversationKey

log = logging.getLogger("parley.discord")

ANSWER_WITHIN = 1.5  # seconds of work before deferring (Discord's limit is 3)
AUTOCOMPLETE_WAIT = 1.5  # seconds an autocomplete waits for the model list
MAX_CHOICES = 25  # Discord shows at most 25 autocomplete choices
NOWHERE = "Parley can't tell where this command was used."
RESET_IN_A_CHANNEL = "Each thread is its own conversation with Parley: use /reset inside the thread."
WORDING = Wording(
    settings_admins="people with the Manage Server permission",
    stop_admins="someone with Manage Messages",
    workspace="server",
)


def place_of(interaction: discord.Interaction) -> Place | None:
    """Where a command was used: the conversation there (a thread or a DM) or the channel."""
    channel = interaction.channel
    if channel is None:
        return None
    if interaction.guild_id is None:
        return Place(ConversationKey("discord", "", str(channel.id), ""), "this DM", PlaceKind.DM)
    guild = str(interaction.guild_id)
    if isinstance(channel, discord.Thread):
        key = ConversationKey("discord", guild, str(channel.parent_id), str(channel.id))
        return Place(key, "this thread", PlaceKind.THREAD)
    name = getattr(channel, "name", None)
    return Place(
        ConversationKey("discord", guild, str(channel.id), ""),
        f"#{name}" if name else "this channel",
        PlaceKind.CHANNEL,
    )


class Commands:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.controls = hub.ctx.controls(WORDING)

    # -- access -----------------------------------------------------------------------------------

    def admits(self, interaction: discord.Interaction) -> bool:
        user = interaction.user
        return self.hub.admits_author(
            user,
            interaction.channel,
            interaction.channel_id or 0,
            guild_id=interaction.guild_id,
            is_bot=user.bot,
        )

    # -- the tree -----------------------------------------------------------------------------------

    def tree(self, client: discord.Client) -> app_commands.CommandTree[discord.Client]:
        tree = _Tree(client, self)

        @tree.command(name="model", description="Show or change the model Parley answers with here")
        @app_commands.describe(name="A model the gateway offers, or 'default'")
        async def model(interaction: discord.Interaction, name: str | None = None) -> None:
            await self.answer(interaction, self.model(interaction, (name or "").strip()))

        @model.autocomplete("name")
        async def model_choices(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return await self.model_choices(current)

        @tree.command(name="reset", description="Make Parley forget this conversation so far")
        async def reset(interaction: discord.Interaction) -> None:
            await self.answer(interaction, self.reset(interaction))

        @tree.command(name="system", description="Show or set the system prompt Parley follows here")
        @app_commands.describe(prompt="The instructions, or 'default' to go back to the default")
        async def system(interaction: discord.Interaction, prompt: str | None = None) -> None:
            await self.answer(interaction, self.system(interaction, (prompt or "").strip()))

        @tree.command(name="usage", description="Your and this server's token usage with Parley")
        async def usage(interaction: discord.Interaction) -> None:
            await self.answer(interaction, self.usage(interaction))

        return tree

    async def answer(self, interaction: discord.Interaction, work: Awaitable[str]) -> None:
        """Answer ephemerally: at once if ``work`` is quick, else defer first and follow up.

        The controls' sentences are Markdown Discord shows as it is."""
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=ANSWER_WITHIN)
        if task in done:
            await interaction.response.send_message(_result(task), ephemeral=True, allowed_mentions=NO_PINGS)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        await asyncio.wait({task})
        await interaction.followup.send(_result(task), ephemeral=True, allowed_mentions=NO_PINGS)

    # -- the commands ---------------------------------------------------------------------------------

    async def model(self, interaction: discord.Interaction, name: str) -> str:
        place = place_of(interaction)
        if place is None:
            return NOWHERE
        return await self.controls.model(place, name, is_admin=known(interaction.permissions.manage_guild))

    async def model_choices(self, current: str) -> list[app_commands.Choice[str]]:
        models = await self.controls.models.get(wait=AUTOCOMPLETE_WAIT) or []
        needle = current.lower()
        picked = [m for m in models if needle in m.lower()][: MAX_CHOICES - 1]
        choices = [app_commands.Choice(name=m, value=m) for m in picked]
        if not needle or needle in "default":
            choices.append(app_commands.Choice(name="default (Parley's configured model)", value="default"))
        return choices

    async def system(self, interaction: discord.Interaction, prompt: str) -> str:
        place = place_of(interaction)
        if place is None:
            return NOWHERE
        return await self.controls.system(place, prompt, is_admin=known(interaction.permissions.manage_guild))

    async def reset(self, interaction: discord.Interaction) -> str:
        place = place_of(interaction)
        if place is None:
            return NOWHERE
        if place.kind is PlaceKind.CHANNEL:
            return RESET_IN_A_CHANNEL
        return await self.controls.reset(place.key)

    async def usage(self, interaction: discord.Interaction) -> str:
        place = place_of(interaction)
        if place is None:
            return NOWHERE
        return await self.controls.usage(str(interaction.user.id), place)

    # -- the Stop button --------------------------------------------------------------------------------

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.component:
            return
        data: dict[str, object] = dict(interaction.data or {})
        if not str(data.get("custom_id", "")).startswith(STOP_ID) or interaction.message is None:
            return
        if not await self.first_delivery(interaction):
            return
        await self.stop(interaction, interaction.message)

    async def first_delivery(self, interaction: discord.Interaction) -> bool:
        """Whether no instance has acted on ``interaction`` yet (its id is claimed in the store);
        a repeat is left unanswered: whoever took it first answers it."""
        if await self.hub.ctx.once("discord", f"interaction:{interaction.id}"):
            return True
        log.info("interaction %s was delivered again; ignored", interaction.id)
        return False

    async def stop(self, interaction: discord.Interaction, message: discord.Message) -> None:
        if not self.admits(interaction):
            await interaction.response.send_message(NOT_HERE, ephemeral=True)
            return
        ref = make_ref(message.channel.id, message.id)
        is_admin = known(interaction.permissions.manage_messages)
        stopped = await self.controls.stop(ref, str(interaction.user.id), is_admin=is_admin)
        if stopped.result is StopResult.GONE:
            # Finished (its final edit is on the way) or orphaned by a restart: take the button away.
            await interaction.response.edit_message(view=None)
        elif stopped.result is StopResult.REFUSED:
            await interaction.response.send_message(stopped.text, ephemeral=True, allowed_mentions=NO_PINGS)
        else:
            # Acknowledge without changing the message: the core's final edit shows "(Stopped.)" and
            # removes the button, and an edit from here could land after it and bring the button back.
            await interaction.response.defer()


class _Tree(app_commands.CommandTree[discord.Client]):
    def __init__(self, client: discord.Client, commands: Commands) -> None:
        super().__init__(client)
        self._commands = commands

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        if self._commands.admits(interaction):
            if interaction.type is discord.InteractionType.autocomplete:
                return True  # suggestions only: asking twice changes nothing
            return await self._commands.first_delivery(interaction)
        if interaction.type is discord.InteractionType.autocomplete:
            await interaction.response.autocomplete([])
        else:
            await interaction.response.send_message(NOT_HERE, ephemeral=True)
        return False

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        log.error("/%s failed", interaction.command.name if interaction.command else "?", exc_info=error)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(FAILED, ephemeral=True)
            else:
                await interaction.response.send_message(FAILED, ephemeral=True)
        except discord.HTTPException:
            pass


def _result(task: asyncio.Future[str]) -> str:
    exc = task.exception()
    if exc is not None:
        log.error("a Discord command failed", exc_info=exc)
        return FAILED
    return task.result()
