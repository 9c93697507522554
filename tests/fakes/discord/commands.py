"""Application-command interactions as Discord builds them: the registered command looked up (guild
commands first), subcommand paths, option types, and ``resolved`` users, members, channels, roles
and attachments."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .models import JSON, Channel, Role, User
from .records import StoredAttachment

if TYPE_CHECKING:
    from .state import World


def command_data(
    world: World,
    name: str,
    options: dict[str, object],
    channel: Channel,
    focused: str | None,
    require_registered: bool,
) -> JSON:
    parts = name.strip().lstrip("/").split()
    candidates = [
        c
        for c in world.commands.values()
        if c["name"] == parts[0] and c.get("type", 1) == 1 and c.get("_guild") in (channel.guild_id, None)
    ]
    candidates.sort(key=lambda c: c.get("_guild") is None)  # guild commands first
    cmd = candidates[0] if candidates else None
    if cmd is None and require_registered:
        raise ValueError(f"/{parts[0]} is not registered: the bot has to sync its command tree first")
    specs: list[JSON] = list(cmd.get("options", [])) if cmd else []
    path: list[tuple[str, int]] = []
    for depth, sub in enumerate(parts[1:], start=1):
        spec = next((o for o in specs if o.get("name") == sub), None)
        kind = spec.get("type") if spec else (2 if depth < len(parts) - 1 else 1)
        path.append((sub, int(kind or 1)))
        specs = list(spec.get("options", [])) if spec else []
    resolved: JSON = {}
    opts: list[JSON] = [
        _option(world, key, value, specs, resolved, channel, key == focused) for key, value in options.items()
    ]
    for sub, kind in reversed(path):
        opts = [{"name": sub, "type": kind, "options": opts}]
    data: JSON = {
        "id": cmd["id"] if cmd else str(world.ids.next()),
        "name": parts[0],
        "type": 1,
        "options": opts,
    }
    if resolved:
        data["resolved"] = resolved
    if cmd is not None and cmd.get("guild_id"):
        data["guild_id"] = cmd["guild_id"]
    return data


def _option(
    world: World, key: str, value: object, specs: list[JSON], resolved: JSON, channel: Channel, focused: bool
) -> JSON:
    spec = next((o for o in specs if o.get("name") == key), {})
    out: JSON = {"name": key}
    if isinstance(value, User):
        out.update(type=6, value=str(value.id))
        resolved.setdefault("users", {})[str(value.id)] = value.payload()
        guild = world.guilds.get(channel.guild_id or 0)
        if guild is not None and value.id in guild.members:
            member = guild.members[value.id].payload(with_user=False)
            member["permissions"] = str(world.permissions_for(value.id, channel))
            resolved.setdefault("members", {})[str(value.id)] = member
    elif isinstance(value, Channel):
        out.update(type=7, value=str(value.id))
        entry = value.payload(bot_id=world.bot.id)
        entry["permissions"] = str(world.permissions_for(world.bot.id, value))
        resolved.setdefault("channels", {})[str(value.id)] = entry
    elif isinstance(value, Role):
        out.update(type=8, value=str(value.id))
        resolved.setdefault("roles", {})[str(value.id)] = value.payload()
    elif isinstance(value, StoredAttachment):
        out.update(type=11, value=str(value.id))
        resolved.setdefault("attachments", {})[str(value.id)] = value.payload()
    elif isinstance(value, bool):
        out.update(type=5, value=value)
    elif isinstance(value, int):
        out.update(type=spec.get("type", 4), value=value)
    elif isinstance(value, float):
        out.update(type=10, value=value)
    else:
        out.update(type=spec.get("type", 3), value=str(value))
    if focused:
        out["focused"] = True
    return out
