"""Who may talk to Parley: one allow/deny policy that every adapter applies on every entry point."""

from __future__ import annotations

from collections.abc import Iterable

from bot.settings import Settings


def _passes(value: str | None, allow: frozenset[str], deny: frozenset[str]) -> bool:
    if value is not None and value in deny:
        return False
    return not allow or (value is not None and value in allow)


def admitted(
    settings: Settings,
    *,
    user_id: str,
    channel_id: str,
    is_dm: bool = False,
    guild_id: str | None = None,
    role_ids: Iterable[str] = (),
    is_bot: bool = False,
) -> bool:
    """True when this user, in this place, may use Parley. A deny list always wins."""
    if is_bot and user_id not in settings.parley_allow_bots:
        return False
    if not _passes(user_id, settings.parley_allow_users, settings.parley_deny_users):
        return False
    if is_dm:
        return settings.parley_allow_dms
    if not _passes(channel_id, settings.parley_allow_channels, settings.parley_deny_channels):
        return False
    if guild_id is None:
        return True  # guild and role lists are Discord's
    if not _passes(guild_id, settings.parley_discord_allow_guilds, settings.parley_discord_deny_guilds):
        return False
    roles = set(role_ids)
    if roles & settings.parley_discord_deny_roles:
        return False
    return not settings.parley_discord_allow_roles or bool(roles & settings.parley_discord_allow_roles)
