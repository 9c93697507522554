"""Slash commands (``/model``, ``/reset``, ``/system``, ``/usage``) and the Stop button.

Every answer is ephemeral. Discord drops an interaction not answered within 3 s, so each
command answers directly when its work is done within :data:`ANSWER_WITHIN`, and otherwise
defers ("Parley is thinking…") and follows up. The access policy applies to every command,
autocomplete and button press, as it does to messages.

``/model`` and ``/system`` apply where they are used: in a thread to that thread, in a channel
to the channel (its threads follow unless they chose their own), in a DM to the DM. With
``PARLEY_ADMIN_ONLY_SETTINGS`` changing them needs the Manage Server permission; anyone may
see them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass

import discord
from discord import app_commands

from adapters.discord.hub import Hub
from adapters.discord.surface import NO_PINGS, STOP_ID, make_ref
from bot.types import ConversationKey

log = logging.getLogger("parley.discord")

ANSWER_WITHIN = 1.5  # seconds of work before deferring (Discord's limit is 3)
MODELS_TTL = 300.0
MAX_CHOICES = 25  # Discord shows at most 25 autocomplete choices
CLEAR_WORDS = frozenset({"default", "reset", "clear", "none"})
NOT_HERE = "Sorry, Parley isn't available to you here."


@dataclass(frozen=True, slots=True)
class Place:
    """Where a command was used: the conversation there (a thread or a DM) or the channel."""

    key: ConversationKey
    label: str  # "this thread", "#general", "this DM"
    is_thread: bool
    is_dm: bool


def place_of(interaction: discord.Interaction) -> Place | None:
    channel = interaction.channel
    if channel is None:
        return None
    if interaction.guild_id is None:
        return Place(ConversationKey("discord", "", str(channel.id), ""), "this DM", False, True)
    guild = str(interaction.guild_id)
    if isinstance(channel, discord.Thread):
        key = ConversationKey("discord", guild, str(channel.parent_id), str(channel.id))
        return Place(key, "this thread", True, False)
    name = getattr(channel, "name", None)
    return Place(
        ConversationKey("discord", guild, str(channel.id), ""),
        f"#{name}" if name else "this channel",
        False,
        False,
    )


class Commands:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._models: tuple[float, list[str]] | None = None
        self._models_lock = asyncio.Lock()

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

    def may_change_settings(self, interaction: discord.Interaction) -> bool:
        if not self.hub.settings.parley_admin_only_settings or interaction.guild_id is None:
            return True
        return interaction.permissions.manage_guild

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
        """Answer ephemerally: at once if ``work`` is quick, else defer first and follow up."""
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=ANSWER_WITHIN)
        if task in done:
            await interaction.response.send_message(_result(task), ephemeral=True, allowed_mentions=NO_PINGS)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        await asyncio.wait({task})
        await interaction.followup.send(_result(task), ephemeral=True, allowed_mentions=NO_PINGS)

    # -- /model -------------------------------------------------------------------------------------

    async def model(self, interaction: discord.Interaction, name: str) -> str:
        place = place_of(interaction)
        if place is None:
            return "Parley can't tell where this command was used."
        default = self.hub.settings.parley_model
        if not name:
            model, _ = await self._overrides(place.key)
            return f"Parley answers with **{model or default}** in {place.label}."
        if not self.may_change_settings(interaction):
            return "Only people with the Manage Server permission can change Parley's model."
        if name.lower() in CLEAR_WORDS:
            await self._set(place, model=None)
            return f"{_cap(place.label)} is back to the default model, **{default}**."
        known = await self.known_models()
        if known is not None and name not in known:
            close = [m for m in known if name.lower() in m.lower()][:10] or known[:10]
            return f"The gateway has no model `{name}`. Some it offers: " + ", ".join(f"`{m}`" for m in close)
        await self._set(place, model=name)
        note = "" if known is not None else " (the gateway's model list could not be read to check the name)"
        return f"Parley now answers with **{name}** in {place.label}{note}."

    async def model_choices(self, current: str) -> list[app_commands.Choice[str]]:
        models = await self.known_models(wait=1.5) or []
        needle = current.lower()
        picked = [m for m in models if needle in m.lower()][: MAX_CHOICES - 1]
        choices = [app_commands.Choice(name=m, value=m) for m in picked]
        if not needle or needle in "default":
            choices.append(app_commands.Choice(name="default (Parley's configured model)", value="default"))
        return choices

    async def known_models(self, *, wait: float | None = None) -> list[str] | None:
        """The gateway's models, cached for five minutes; None if they cannot be listed (in time)."""
        cached = self._models
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            return await asyncio.wait_for(asyncio.shield(self._refresh_models()), wait)
        except TimeoutError:
            return cached[1] if cached is not None else None

    async def _refresh_models(self) -> list[str] | None:
        async with self._models_lock:
            if self._models is not None and self._models[0] > time.monotonic():
                return self._models[1]
            try:
                models = await self.hub.runtime.gateway.list_models()
            except Exception as exc:
                log.warning("could not list the gateway's models: %s", exc)
                return None
            self._models = (time.monotonic() + MODELS_TTL, list(models))
            return self._models[1]

    # -- /system ------------------------------------------------------------------------------------

    async def system(self, interaction: discord.Interaction, prompt: str) -> str:
        place = place_of(interaction)
        if place is None:
            return "Parley can't tell where this command was used."
        if not prompt:
            _, system = await self._overrides(place.key)
            if not system:
                return f"{_cap(place.label)} uses Parley's default system prompt."
            return f"The system prompt in {place.label}:\n>>> {system}"
        if not self.may_change_settings(interaction):
            return "Only people with the Manage Server permission can change Parley's system prompt."
        if prompt.lower() in CLEAR_WORDS:
            await self._set(place, system=None)
            return f"{_cap(place.label)} is back to the default system prompt."
        await self._set(place, system=prompt)
        return f"Parley will follow this system prompt in {place.label}."

    # -- /reset, /usage -----------------------------------------------------------------------------

    async def reset(self, interaction: discord.Interaction) -> str:
        place = place_of(interaction)
        if place is None:
            return "Parley can't tell where this command was used."
        if not (place.is_thread or place.is_dm):
            return "Each thread is its own conversation with Parley: use /reset inside the thread."
        store = self.hub.store
        conversation = await store.conversations.find(place.key)
        if conversation is None:
            return "There is nothing to forget here yet."
        await store.conversations.reset(conversation.id)
        return "Done: Parley starts this conversation afresh."

    async def usage(self, interaction: discord.Interaction) -> str:
        store = self.hub.store
        mine = await store.usage.totals(user_id=str(interaction.user.id), platform="discord")
        lines = [f"**You:** {_totals(mine)}"]
        if interaction.guild_id is not None:
            server = await store.usage.totals(workspace=str(interaction.guild_id), platform="discord")
            lines.append(f"**This server:** {_totals(server)}")
        return "\n".join(lines)

    # -- settings storage -----------------------------------------------------------------------------

    async def _overrides(self, key: ConversationKey) -> tuple[str | None, str | None]:
        overrides = await self.hub.store.conversations.overrides(key)  # creates no row
        return overrides.model, overrides.system

    async def _set(self, place: Place, **change: str | None) -> None:
        store = self.hub.store
        if place.is_thread:
            conversation = await store.conversations.find_or_create(place.key)
            if "model" in change:
                await store.conversations.set_model(conversation.id, change["model"])
            if "system" in change:
                await store.conversations.set_system(conversation.id, change["system"])
            return
        if "model" in change:
            await store.conversations.set_channel_model(place.key, change["model"])
        if "system" in change:
            await store.conversations.set_channel_system(place.key, change["system"])

    # -- the Stop button --------------------------------------------------------------------------------

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.component:
            return
        data: dict[str, object] = dict(interaction.data or {})
        if not str(data.get("custom_id", "")).startswith(STOP_ID) or interaction.message is None:
            return
        await self.stop(interaction, interaction.message)

    async def stop(self, interaction: discord.Interaction, message: discord.Message) -> None:
        if not self.admits(interaction):
            await interaction.response.send_message(NOT_HERE, ephemeral=True)
            return
        ref = make_ref(message.channel.id, message.id)
        service = self.hub.service
        owner = service.reply_owner(ref)
        if owner is None:
            # Finished (its final edit is on the way) or orphaned by a restart: take the button away.
            await interaction.response.edit_message(view=None)
            return
        allowed = owner == str(interaction.user.id) or interaction.permissions.manage_messages
        if not allowed:
            await interaction.response.send_message(
                f"Only <@{owner}>, who asked, or someone with Manage Messages can stop this reply.",
                ephemeral=True,
                allowed_mentions=NO_PINGS,
            )
            return
        # Acknowledge without changing the message: the core's final edit shows "(Stopped.)" and
        # removes the button, and an edit from here could land after it and bring the button back.
        await interaction.response.defer()
        service.stop(ref)


class _Tree(app_commands.CommandTree[discord.Client]):
    def __init__(self, client: discord.Client, commands: Commands) -> None:
        super().__init__(client)
        self._commands = commands

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        if self._commands.admits(interaction):
            return True
        if interaction.type is discord.InteractionType.autocomplete:
            await interaction.response.autocomplete([])
        else:
            await interaction.response.send_message(NOT_HERE, ephemeral=True)
        return False

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        log.error("/%s failed", interaction.command.name if interaction.command else "?", exc_info=error)
        text = "Something went wrong; the error is in Parley's log."
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            pass


def _result(task: asyncio.Future[str]) -> str:
    exc = task.exception()
    if exc is not None:
        log.error("a Discord command failed", exc_info=exc)
        return "Something went wrong; the error is in Parley's log."
    return task.result()


def _totals(t: object) -> str:
    requests = getattr(t, "requests", 0)
    tokens_in = getattr(t, "input_tokens", 0)
    tokens_out = getattr(t, "output_tokens", 0)
    thinking = getattr(t, "thinking_tokens", 0)
    replies = f"{requests} repl{'y' if requests == 1 else 'ies'}"
    extra = f" ({thinking:,} of them thinking)" if thinking else ""
    return f"{replies}, {tokens_in:,} input and {tokens_out:,} output tokens{extra}"


def _cap(label: str) -> str:
    return label[:1].upper() + label[1:]
